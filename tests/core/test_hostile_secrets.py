"""No key leaks on the transport paths, on both transports, against a hostile server.

Redirects are not followed (a cross-origin redirect reaches no other origin, a redirect loop ends
at its first reply), no client-library exception (which may hold the request headers) survives on
``__cause__``/``__context__``, echoed keys are masked in what we raise, and the HTTP libraries'
DEBUG logs (httpcore prints response headers) are masked by the transports' log filter.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import HostileServer
from dsrs.transport import (
    ConnectError,
    HttpRequest,
    TransportError,
    get_transport,
    make_transport,
    set_transport_factory,
)
from dsrs.transport._secrets import LOGGERS, SecretLogFilter, scrub

# Two keys: one with a known shape (``sk-``) and one without (only its value can mask it).
SHAPED_KEY = "sk-hostileA1b2C3d4E5f6G7h8"
PLAIN_KEY = "plainhostilekey0123456789xyz"


@pytest.fixture(params=["aiohttp", "httpx"])
def transport_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    set_transport_factory(lambda: make_transport(name))
    yield name
    set_transport_factory(None)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


def everything_said(exc: BaseException) -> str:
    """str, repr and every attribute of ``exc`` and of every exception on its cause/context chain."""
    seen: set[int] = set()
    out: list[str] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e), repr(e.args)]
        out += [f"{k}={v!r}" for k, v in vars(e).items()]
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += [v for v in vars(e).values() if isinstance(v, BaseException)]
    return "\n".join(out)


def _chain(exc: BaseException) -> list[BaseException]:
    out, e = [], exc.__cause__ or exc.__context__
    while e is not None:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


@pytest.mark.parametrize("key", [SHAPED_KEY, PLAIN_KEY])
async def test_cross_origin_redirect_is_not_followed(transport_name: str, server: HostileServer, key: str) -> None:
    before = len(server.other_origin_requests)
    lm = dsrs.LM("m", base_url=server.base_url("redirect-cross-origin"), api_key=key)
    with pytest.raises(dsrs.LMError) as info:
        await lm.acall("hi")
    assert info.value.status == 307
    assert len(server.other_origin_requests) == before  # the key went nowhere else
    assert key not in everything_said(info.value)


async def test_a_redirect_is_returned_as_it_is(transport_name: str, server: HostileServer) -> None:
    url = server.base_url("redirect-cross-origin") + "/chat/completions"
    headers = {"x-goog-api-key": PLAIN_KEY}
    resp = await get_transport().send(HttpRequest("POST", url, headers, b"{}", 5.0))
    assert resp.status == 307 and resp.headers["location"].startswith(server.other_url)
    async with get_transport().stream(HttpRequest("POST", url, headers, b"{}", 5.0)) as streamed:
        assert streamed.status == 307
    assert not [r for r in server.other_origin_requests if r.headers.get("x-goog-api-key") == PLAIN_KEY]


async def test_redirect_loop_ends_at_its_first_reply(transport_name: str, server: HostileServer) -> None:
    before = len([r for r in server.requests if r.scenario == "redirect-loop"])
    lm = dsrs.LM("m", base_url=server.base_url("redirect-loop"), api_key=PLAIN_KEY)
    with pytest.raises(dsrs.LMError) as info:
        await lm.acall("hi")
    assert info.value.status == 302
    assert len([r for r in server.requests if r.scenario == "redirect-loop"]) == before + 1
    assert PLAIN_KEY not in everything_said(info.value)


@pytest.mark.parametrize("scenario", ["echo-keys", "echo-keys-500"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("key", [SHAPED_KEY, PLAIN_KEY])
async def test_echoed_keys_are_masked_in_the_error(
    transport_name: str, server: HostileServer, scenario: str, stream: bool, key: str
) -> None:
    lm = dsrs.LM("m", base_url=server.base_url(scenario), api_key=key)
    with pytest.raises(dsrs.LMError) as info:
        await (_drain(lm) if stream else lm.acall("hi"))
    err = info.value
    assert err.status == (401 if scenario == "echo-keys" else 500)
    assert "invalid credentials" in err.message  # the server's message is kept, masked
    for text in (err.message, err.body or "", str(err), repr(err)):
        assert key not in text and key.lower() not in text.lower()
    assert not _chain(err)


async def test_echoed_key_is_masked_in_every_error_attribute(transport_name: str, server: HostileServer) -> None:
    lm = dsrs.LM("m", base_url=server.base_url("echo-keys"), api_key=PLAIN_KEY)
    with pytest.raises(dsrs.LMError) as info:
        await lm.acall("hi")
    assert PLAIN_KEY.lower() not in everything_said(info.value).lower()


async def _drain(lm: dsrs.LM) -> None:
    async for _ in lm.astream("hi"):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/v1/models?key={key}",  # refused
        "http://127.0.0.1:99999/v1/models?key={key}",  # invalid port
        "ftp://127.0.0.1:{port}/v1/models?api_key={key}",  # unsupported scheme
    ],
)
async def test_transport_errors_hold_no_key_and_no_library_exception(transport_name: str, url: str) -> None:
    request = HttpRequest(
        "GET",
        url.format(port=_free_port(), key=PLAIN_KEY),
        {"authorization": f"Bearer {PLAIN_KEY}", "x-api-key": SHAPED_KEY},
        None,
        5.0,
    )
    with pytest.raises(TransportError) as info:
        await get_transport().send(request)
    err = info.value
    assert err.__cause__ is None and err.__context__ is None
    said = everything_said(err)
    assert PLAIN_KEY not in said and SHAPED_KEY not in said
    if "99999" not in url and "ftp" not in url:
        assert isinstance(err, ConnectError)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)  # restored by caplog at teardown
    return caplog


async def test_http_library_debug_logs_are_masked(
    transport_name: str, server: HostileServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    url = server.base_url("echo-keys") + "/chat/completions"
    headers = {"authorization": f"Bearer {PLAIN_KEY}", "x-api-key": SHAPED_KEY}
    resp = await get_transport().send(HttpRequest("POST", url, headers, b"{}", 5.0))
    assert resp.status == 401 and PLAIN_KEY in resp.headers["x-echo-authorization"]  # the server did echo
    messages = [r.getMessage() for r in debug_logs.records]
    if transport_name == "httpx":
        # httpcore logs the response headers at DEBUG: the echo is there, its value masked.
        assert any("x-echo-authorization" in m for m in messages)
    for message in messages:
        assert PLAIN_KEY not in message and SHAPED_KEY not in message, message


def test_log_filter_masks_header_values_and_shapes() -> None:
    record = logging.LogRecord(
        "httpcore.http11",
        logging.DEBUG,
        __file__,
        1,
        "receive_response_headers.complete return_value=%r",
        ((b"HTTP/1.1", 401, b"X", [(b"x-goog-api-key", b"AIzaNotAShapeButAHeaderValue"), (b"ok", b"fine")]),),
        None,
    )
    assert SecretLogFilter().filter(record)
    message = record.getMessage()
    assert "AIzaNotAShapeButAHeaderValue" not in message and "b'x-goog-api-key', b'***'" in message
    assert "b'ok', b'fine'" in message  # only credentials are masked


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
        ("{'x-api-key': 'zzzzzzzzzzzz1'}", "zzzzzzzzzzzz1"),
        ("GET /v1/models?alt=sse&key=qqqqqqqqqqqq HTTP/1.1", "qqqqqqqqqqqq"),
        ("key sk-abcdefghijklmnop in text", "sk-abcdefghijklmnop"),
    ],
)
def test_scrub(text: str, hidden: str) -> None:
    clean = scrub(text)
    assert hidden not in clean and "***" in clean
