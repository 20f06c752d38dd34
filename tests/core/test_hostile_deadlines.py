"""Deadlines hold against a hostile server, on both transports.

``LM(..., timeout=T)`` ends by ``T + 0.2 s`` whatever the server does: drip the status line, the
body, SSE heartbeat comments or real deltas one every 0.3 s (each read would succeed; only a
whole-call deadline stops them). The transport's stream deadlines (``first_byte_timeout``,
``idle_timeout``) expire as named, and the connection is really closed (the server sees it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import HostileServer
from dsrs.transport import HttpRequest, TransportTimeout, get_transport, make_transport, set_transport_factory

SLACK = 0.2  # the bound: no call outlives its deadline by more than this


@pytest.fixture(params=["aiohttp", "httpx"])
def transport_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    set_transport_factory(lambda: make_transport(name))
    yield name
    set_transport_factory(None)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(interval=0.3, give_up_after=15.0) as srv:
        yield srv


async def _wait_for_hangup(server: HostileServer, scenario: str, before: int, seconds: float = 2.0) -> bool:
    # The server notices a closed connection on its next write or two (0.3 s apart); the client's
    # loop must keep running meanwhile (aiohttp finishes closing a cancelled connection on it).
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if _hangups(server, scenario) > before:
            return True
        await asyncio.sleep(0.02)
    return False


async def _call(lm: dsrs.LM, stream: bool, deltas: list[str]) -> None:
    if not stream:
        await lm.acall("hi")
        return
    async for delta in lm.astream("hi"):
        deltas.append(delta)


async def _read_stream(request: HttpRequest, chunks: list[bytes], arrivals: list[float] | None = None) -> None:
    async with get_transport().stream(request) as resp:
        async for chunk in resp.aiter_bytes():
            chunks.append(chunk)
            if arrivals is not None:
                arrivals.append(time.monotonic())


def _hangups(server: HostileServer, scenario: str) -> int:
    return sum(1 for s, _ in server.hangups if s == scenario)


@pytest.mark.parametrize(
    ("scenario", "stream"),
    [
        ("drip-headers", False),
        ("drip-bytes", False),
        ("drip-heartbeats", True),
        ("drip-deltas", True),
        ("drip-deltas", False),
        ("drip-heartbeats", False),
    ],
)
async def test_call_ends_by_its_timeout(
    transport_name: str, server: HostileServer, scenario: str, stream: bool
) -> None:
    timeout = 1.0
    # Warm up first: the first call of a process loads plugins and models before any deadline starts.
    assert (await dsrs.LM("m", base_url=server.base_url("ok")).acall("hi")).text == "ok"
    # One attempt: this is the transport's deadline (a plain LM's retries are tested below).
    lm = dsrs.LM("m", base_url=server.base_url(scenario), timeout=timeout, retries=0)
    before = _hangups(server, scenario)
    deltas: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(dsrs.LMTimeoutError) as info:
        await _call(lm, stream, deltas)
    elapsed = time.monotonic() - t0
    assert timeout - 0.05 <= elapsed <= timeout + SLACK, f"{scenario}: ended after {elapsed:.3f}s"
    assert "timeout=1s" in str(info.value)
    if scenario == "drip-deltas" and stream:
        assert deltas and set(deltas) == {"x"}  # the deltas that came in time were delivered
    # The connection was closed, not left dripping into a forgotten socket.
    assert await _wait_for_hangup(server, scenario, before)


async def test_call_with_default_retries_ends_by_its_timeout(transport_name: str, server: HostileServer) -> None:
    assert (await dsrs.LM("m", base_url=server.base_url("ok")).acall("hi")).text == "ok"
    # retries=2 is a plain LM's default (the test suite sets DSRS_RETRIES=0 for every other test).
    lm = dsrs.LM("m", base_url=server.base_url("drip-bytes"), timeout=1.0, retries=2)
    t0 = time.monotonic()
    with pytest.raises(dsrs.LMTimeoutError):
        await lm.acall("hi")
    assert time.monotonic() - t0 <= 1.0 + SLACK


async def test_first_byte_timeout_expires_as_named(transport_name: str, server: HostileServer) -> None:
    request = HttpRequest("POST", server.base_url("drip-headers") + "/chat/completions", {}, b"{}", 10.0, 0.5)
    transport = get_transport()  # made (and its library imported) before the clock starts
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout) as info:
        async with transport.stream(request) as resp:
            await resp.aread()
    assert 0.45 <= time.monotonic() - t0 <= 0.5 + SLACK
    assert (info.value.deadline, info.value.seconds) == ("first_byte_timeout", 0.5)
    assert str(info.value) == "no data from the server within first_byte_timeout=0.5s"


async def test_idle_timeout_between_chunks(transport_name: str) -> None:
    # Deltas every 0.3 s with idle_timeout 0.1: the first chunk arrives, the wait for the next expires.
    with HostileServer(interval=0.3, give_up_after=5.0) as srv:
        url = srv.base_url("drip-deltas") + "/chat/completions"
        request = HttpRequest("POST", url, {}, b'{"stream":true}', 10.0, idle_timeout=0.1)
        chunks: list[bytes] = []
        arrivals: list[float] = []
        with pytest.raises(TransportTimeout) as info:
            await _read_stream(request, chunks, arrivals)
        idle = time.monotonic() - arrivals[-1]
    assert info.value.deadline == "idle_timeout"
    assert len(chunks) == 1 and b'"content":"x"' in chunks[0]
    assert 0.1 - 0.02 <= idle <= 0.1 + SLACK


async def test_heartbeats_keep_a_stream_alive_until_the_total_deadline(
    transport_name: str, server: HostileServer
) -> None:
    # idle_timeout 0.5 > the 0.3 s heartbeat interval: never idle; the total deadline ends it.
    url = server.base_url("drip-heartbeats") + "/chat/completions"
    request = HttpRequest("POST", url, {}, b'{"stream":true}', 1.2, idle_timeout=0.5)
    chunks: list[bytes] = []
    get_transport()  # made before the clock starts
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout) as info:
        await _read_stream(request, chunks)
    assert info.value.deadline == "timeout"
    assert len(chunks) >= 3 and set(chunks) == {b": ping\n\n"}
    assert 1.15 <= time.monotonic() - t0 <= 1.2 + SLACK


async def test_send_timeout_is_total_not_per_read(transport_name: str, server: HostileServer) -> None:
    # Each byte arrives well within 0.6 s; the whole body never does.
    request = HttpRequest("POST", server.base_url("drip-bytes") + "/chat/completions", {}, b"{}", 0.6)
    transport = get_transport()
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout) as info:
        await transport.send(request)
    assert info.value.deadline == "timeout"
    assert time.monotonic() - t0 <= 0.6 + SLACK
    assert info.value.__cause__ is None and info.value.__context__ is None


async def test_an_honest_answer_is_unaffected(transport_name: str, server: HostileServer) -> None:
    lm = dsrs.LM("m", base_url=server.base_url("ok"), timeout=1.0)
    assert (await lm.acall("hi")).text == "ok"
    assert [d async for d in lm.astream("hi")] == ["ok"]
