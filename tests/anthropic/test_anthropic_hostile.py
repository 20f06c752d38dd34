"""The anthropic provider against dsrs's hostile server: drips end by the deadline, huge and
compressed bodies and endless lines stop at their bounds, and a server echoing the key in 401 and
500 bodies and headers never gets it into the error. (The scenarios answer any path, so the
provider's ``/v1/messages`` reaches them; their 2xx bodies are not Messages, which is itself a
ResponseParseError.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import HostileServer

SECRET = "plainsecretvalue-0042"  # no credential shape: only knowing the key redacts it


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(interval=0.2, give_up_after=10.0) as srv:
        # Warm up (imports, plugins, the connection pool), so deadlines below measure the server.
        with pytest.raises(dsrs.ResponseParseError):
            dsrs.LM("claude-sonnet-4-5", base_url=srv.base_url("ok"), api_key=SECRET).call("hi")
        yield srv


def lm(server: HostileServer, scenario: str, timeout: float = 10.0) -> dsrs.LM:
    return dsrs.LM("claude-sonnet-4-5", base_url=server.base_url(scenario), api_key=SECRET, timeout=timeout)


async def _drain(model: dsrs.LM) -> None:
    async for _ in model.astream("hi"):
        pass


@pytest.mark.parametrize(
    ("scenario", "stream"), [("drip-headers", False), ("drip-bytes", False), ("drip-heartbeats", True)]
)
async def test_drips_end_by_the_timeout(server: HostileServer, scenario: str, stream: bool) -> None:
    model = lm(server, scenario, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(dsrs.LMTimeoutError):
        await (_drain(model) if stream else model.acall("hi"))
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("scenario", ["huge-body", "gzip-bomb"])
async def test_oversized_bodies_stop_at_the_bound(server: HostileServer, scenario: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(dsrs.ResponseParseError, match="max_body_bytes"):
        await lm(server, scenario).acall("hi")
    assert time.monotonic() - t0 < 3.0


async def test_endless_stream_line_stops_at_the_bound(server: HostileServer) -> None:
    with pytest.raises(dsrs.ResponseParseError, match="max_line_bytes"):
        await _drain(lm(server, "endless-line"))


@pytest.mark.parametrize(("scenario", "cls"), [("echo-keys", dsrs.AuthenticationError), ("echo-keys-500", dsrs.ProviderUnavailableError)])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
async def test_echoed_key_never_in_the_error(server: HostileServer, scenario: str, cls: type, stream: bool) -> None:
    model = lm(server, scenario)
    with pytest.raises(cls) as info:
        await (_drain(model) if stream else model.acall("hi"))
    e: BaseException | None = info.value
    while e is not None:
        assert SECRET not in str(e) and SECRET not in repr(e)
        assert all(SECRET not in repr(v) for v in vars(e).values())
        e = e.__cause__ or e.__context__
    assert any(SECRET in r.headers.get("x-api-key", "") for r in server.requests)  # it was sent, and echoed


async def test_an_openai_shaped_2xx_is_not_a_message(server: HostileServer) -> None:
    with pytest.raises(dsrs.ResponseParseError, match="expected a Message object"):
        await lm(server, "ok").acall("hi")


@pytest.mark.parametrize("scenario", ["echo-keys", "echo-keys-500"])
async def test_probe_detail_never_shows_an_echoed_key(
    server: HostileServer, scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url(scenario))
    spec = next(s for s in dsrs.providers() if s.name == "anthropic")
    result = await spec.load().probe(spec, 5.0)
    assert result.configured and result.reachable is False
    assert SECRET not in result.detail and SECRET not in repr(result)
