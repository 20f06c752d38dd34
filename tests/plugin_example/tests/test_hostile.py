"""The provider against dsrs's hostile server: drips end by the deadline, huge and compressed
bodies and endless lines stop at their bounds, redirects are not followed, and a key read from the
environment and echoed back never reaches the error. (The scenarios answer any path, so
``/v2/chat`` reaches them; their 2xx bodies are OpenAI-shaped, which is itself a parse error.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import HostileServer

SECRET = "plainsecretvalue-0042"  # no credential shape: only knowing the key redacts it
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(interval=0.2, give_up_after=10.0, huge_bytes=48 * MIB, bomb_bytes=64 * MIB) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", SECRET)  # the key comes from the environment, not api_key=


def lm(server: HostileServer, scenario: str, timeout: float = 10.0) -> dsrs.LM:
    return dsrs.LM("acme-large", base_url=server.base_url(scenario), timeout=timeout, retries=0)


def send(model: dsrs.LM, streamed: bool) -> object:
    return "".join(model.stream("hi")) if streamed else model.call("hi")


@pytest.mark.parametrize(
    ("scenario", "streamed"), [("drip-headers", False), ("drip-bytes", False), ("drip-heartbeats", True)]
)
def test_drips_end_by_the_timeout(server: HostileServer, scenario: str, streamed: bool) -> None:
    t0 = time.monotonic()
    with pytest.raises(dsrs.LMTimeoutError):
        send(lm(server, scenario, timeout=1.0), streamed)
    assert time.monotonic() - t0 < 2.5


@pytest.mark.parametrize(
    ("scenario", "streamed", "bound"),
    [
        ("huge-body", False, "max_body_bytes"),
        ("gzip-bomb", False, "max_body_bytes"),
        ("endless-line", True, "max_line_bytes"),
    ],
)
def test_oversized_answers_stop_at_the_bound(server: HostileServer, scenario: str, streamed: bool, bound: str) -> None:
    with pytest.raises(dsrs.ResponseParseError, match=bound):
        send(lm(server, scenario), streamed)


@pytest.mark.parametrize(("scenario", "cls"), [("echo-keys", dsrs.AuthenticationError), ("echo-keys-500", dsrs.ProviderUnavailableError)])  # fmt: skip
@pytest.mark.parametrize("streamed", [False, True], ids=["call", "stream"])
def test_an_echoed_environment_key_never_reaches_the_error(
    server: HostileServer, scenario: str, cls: type[dsrs.LMError], streamed: bool
) -> None:
    with pytest.raises(cls) as info:
        send(lm(server, scenario), streamed)
    e: BaseException | None = info.value
    while e is not None:
        assert SECRET not in str(e) and SECRET not in repr(e)
        assert all(SECRET not in repr(v) for v in vars(e).values())
        e = e.__cause__ or e.__context__
    assert any(SECRET in r.headers.get("authorization", "") for r in server.requests)  # sent, and echoed


def test_a_redirect_elsewhere_is_not_followed(server: HostileServer) -> None:
    with pytest.raises(dsrs.LMError):
        lm(server, "redirect-cross-origin").call("hi")
    assert server.other_origin_requests == []  # the key never went to another origin


def test_an_answer_of_another_wire_is_a_parse_error(server: HostileServer) -> None:
    with pytest.raises(dsrs.ResponseParseError, match="not an Acme chat answer"):
        lm(server, "ok").call("hi")
