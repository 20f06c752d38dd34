"""Both transports (aiohttp and httpx) against a real loopback OpenAI-wire server.

Every test runs once per transport, through ``dsrs.LM(..., base_url=...)`` (the built-in
openai-compatible provider), so the hot path the benchmark measures is the one checked here:
answers, streams, typed errors for statuses, truncated bodies, refused connections and timeouts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import LoopbackServer, Reply, openai_wire_server
from dsrs.transport import HttpRequest, get_transport, make_transport, set_transport_factory

TRANSPORTS = ["aiohttp", "httpx"]


@pytest.fixture(params=TRANSPORTS)
def transport_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    set_transport_factory(lambda: make_transport(name))
    yield name
    set_transport_factory(None)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with openai_wire_server() as srv:
        yield srv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


async def test_transport_is_the_requested_one(transport_name: str, server: LoopbackServer) -> None:
    assert get_transport().name == transport_name


async def test_call_sends_the_exact_body_and_reads_answer_and_usage(
    transport_name: str, server: LoopbackServer
) -> None:
    lm = dsrs.LM("m", base_url=server.url, temperature=0.5, max_tokens=20)
    r = await lm.acall("hello there world")
    assert r.text == "hello there world"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 3, 6)
    assert r.usage.calls == 1 and r.usage.cost_usd is None  # nobody prices model "m": unknown, not 0
    assert r.provider == "openai-compatible" and r.model == "m" and r.finish_reason == "stop"
    (req,) = server.requests
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "model": "m",
        "messages": [{"role": "user", "content": "hello there world"}],
        "temperature": 0.5,
        "max_tokens": 20,
    }


async def test_sequential_calls_reuse_one_connection_and_stay_correct(
    transport_name: str, server: LoopbackServer
) -> None:
    lm = dsrs.LM("m", base_url=server.url)
    texts = [(await lm.acall(f"call number {i}")).text for i in range(5)]
    assert texts == [f"call number {i}" for i in range(5)]
    assert [r.json()["messages"][0]["content"] for r in server.requests] == texts


async def test_response_headers_read_lower_case(transport_name: str, server: LoopbackServer) -> None:
    server.push(Reply(200, {"ok": True}, headers={"Content-Type": "application/json", "X-Request-ID": "abc"}))
    resp = await get_transport().send(HttpRequest("GET", server.url + "/anything", {}, None, 5.0))
    assert resp.status == 200 and resp.ok
    assert resp.headers["x-request-id"] == "abc"
    assert "x-request-id" in resp.headers
    assert "x-request-id" in list(resp.headers) and "X-Request-ID" not in list(resp.headers)
    assert dict(resp.headers)["content-type"] == "application/json"


async def test_stream_yields_deltas_then_usage(transport_name: str, server: LoopbackServer) -> None:
    lm = dsrs.LM("m", base_url=server.url)
    stream = lm.astream("one two three")
    deltas = [d async for d in stream]
    assert deltas == ["one", " two", " three"]
    assert stream.response is not None and stream.response.text == "one two three"
    assert stream.usage is not None and stream.usage.completion_tokens == 3
    body = server.requests[0].json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (
            Reply(
                429,
                {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
                headers={"retry-after": "7"},
            ),
            dsrs.RateLimitError,
            7.0,
        ),
        (Reply(401, {"error": {"message": "bad key", "code": "invalid_api_key"}}), dsrs.AuthenticationError, None),
        (
            Reply(400, {"error": {"message": "too long", "code": "context_length_exceeded"}}),
            dsrs.ContextWindowExceededError,
            None,
        ),
        (Reply(503, b"upstream down"), dsrs.ProviderUnavailableError, None),
    ],
    ids=["429", "401", "400-context", "503-text"],
)
async def test_error_statuses_are_typed(
    transport_name: str, server: LoopbackServer, reply: Reply, error: type[dsrs.LMError], retry_after: float | None
) -> None:
    lm = dsrs.LM("m", base_url=server.url)
    server.push(reply)
    with pytest.raises(error) as info:
        await lm.acall("hi")
    assert info.value.status == reply.status
    assert info.value.provider == "openai-compatible"
    if retry_after is not None:
        assert info.value.retry_after == pytest.approx(retry_after)
    server.push(reply)
    with pytest.raises(error):  # the same through the streaming path
        async for _ in lm.astream("hi"):
            pass


async def test_truncated_body_is_a_parse_error(transport_name: str, server: LoopbackServer) -> None:
    body = (
        b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}'
    )
    server.push(Reply(200, body, headers={"content-type": "application/json"}, truncate_to=20))
    with pytest.raises(dsrs.ResponseParseError):
        await dsrs.LM("m", base_url=server.url).acall("hi")


async def test_connection_refused_is_provider_unavailable(transport_name: str) -> None:
    lm = dsrs.LM("m", base_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(dsrs.ProviderUnavailableError) as info:
        await lm.acall("hi")
    assert info.value.retryable
    with pytest.raises(dsrs.ProviderUnavailableError):
        async for _ in lm.astream("hi"):
            pass


async def test_slow_server_is_a_timeout(transport_name: str, server: LoopbackServer) -> None:
    server.push(Reply(200, {"never": "read"}, delay=1.0))
    with pytest.raises(dsrs.LMTimeoutError):
        await dsrs.LM("m", base_url=server.url, timeout=0.2).acall("hi")


async def test_dropped_connection_is_provider_unavailable(transport_name: str, server: LoopbackServer) -> None:
    server.push(Reply(drop=True), Reply(drop=True))
    with pytest.raises(dsrs.ProviderUnavailableError):
        await dsrs.LM("m", base_url=server.url).acall("hi")


async def test_concurrent_calls_each_get_their_own_answer(transport_name: str, server: LoopbackServer) -> None:
    import asyncio

    lm = dsrs.LM("m", base_url=server.url)
    results = await asyncio.gather(*(lm.acall(f"prompt {i}") for i in range(32)))
    assert [r.text for r in results] == [f"prompt {i}" for i in range(32)]
