"""A full streamed answer with extended thinking and tool use, as the streaming reference shows it
(https://docs.anthropic.com/en/docs/build-with-claude/streaming, "Streaming request with extended
thinking" and "Streaming request with tool use"), served whole and cut at every few bytes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import dsrs
from dsrs.testing import LoopbackServer, Reply
from dsrs.wire import SSEEvent

KEY = "sk-ant-api03-TESTdsrs0123456789abcdefghijklmnopqrstuv"

TRANSCRIPT = """event: message_start
data: {"type": "message_start", "message": {"id": "msg_01...", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 472, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 2}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\\n\\n1071 = 2 \\u00d7 462 + 147"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "\\n462 = 3 \\u00d7 147 + 21\\n147 = 7 \\u00d7 21 + 0\\n\\nSo GCD(1071, 462) = 21"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "The greatest common divisor of 1071 and 462 is **21**. "}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Okay, let's check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 1}

event: content_block_start
data: {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\\"location\\":"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": " \\"San Francisc"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "o, CA\\", \\"unit\\": \\"fahrenheit\\"}"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 2}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 89}}

event: message_stop
data: {"type": "message_stop"}

"""


def serve(chunk: int) -> LoopbackServer:
    raw = TRANSCRIPT.encode()
    pieces = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    return LoopbackServer(lambda req: Reply(200, headers={"content-type": "text/event-stream"}, chunks=pieces))


@pytest.mark.parametrize("chunk", [len(TRANSCRIPT.encode()), 97, 7, 1])
def test_full_transcript_with_thinking_and_tool_use(chunk: int) -> None:
    with serve(chunk) as srv:
        model = dsrs.LM("claude-sonnet-4-5", base_url=srv.url, api_key=KEY, max_tokens=16000, thinking=10000)
        stream = model.stream("What is the GCD of 1071 and 462, and the weather in SF?")
        deltas = list(stream)
        r = stream.response
    assert r is not None
    assert deltas == [
        "The greatest common divisor of 1071 and 462 is **21**. ",
        "Okay, let's check the weather for San Francisco, CA:",
    ]
    assert r.text == "".join(deltas)
    assert r.reasoning is not None and r.reasoning.startswith("I need to find the GCD") and r.reasoning.endswith("= 21")
    assert r.finish_reason == "tool_calls" and r.model == "claude-sonnet-4-5-20250929"
    (call,) = r.tool_calls
    assert (call.id, call.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert json.loads(call.arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    (block,) = (r.provider_state or {})["anthropic"]["thinking"]
    assert block["signature"] == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."
    assert block["thinking"] == r.reasoning
    u = r.usage
    assert (u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.completion_tokens) == (2572, 2000, 100, 89)
    assert u.cost_usd == pytest.approx((472 * 3.0 + 100 * 3.75 + 2000 * 0.3 + 89 * 15.0) / 1e6)
    # The next turn carries the signed block back, first in the assistant turn.
    msg = r.message()
    assert msg.tool_calls == r.tool_calls and msg.provider_state == r.provider_state


def test_reasoning_deltas_reach_the_caller() -> None:
    with serve(64) as srv:
        model = dsrs.LM("claude-sonnet-4-5", base_url=srv.url, api_key=KEY, max_tokens=16000, thinking=10000)
        provider = model.provider()
        request = model.build_request("q")

        async def chunks() -> list[dsrs.StreamChunk]:
            return [c async for c in provider.astream(request)]

        import asyncio

        got = asyncio.run(chunks())
    reasoning = [c.reasoning for c in got if c.reasoning]
    assert len(reasoning) == 2 and "".join(reasoning).endswith("= 21")
    assert got[-1].response is not None


def _decoder() -> Any:
    from dsrs.types import LMRequest, Message
    from dsrs_anthropic.codec import AnthropicCodec

    request = LMRequest(provider="anthropic", model="claude-sonnet-4-5", messages=(Message("user", "q"),))
    return AnthropicCodec().stream_decoder(request)


def _ev(event: str, data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(json.dumps(data), event)


START = {
    "type": "message_start",
    "message": {"type": "message", "model": "m", "content": [], "usage": {"input_tokens": 1}},
}
TEXT_BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def test_many_small_deltas_decode_in_linear_time() -> None:
    d = _decoder()
    d.feed(_ev("message_start", START))
    d.feed(_ev("content_block_start", TEXT_BLOCK))
    delta = SSEEvent(
        json.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ab"}})
    )
    t0 = time.perf_counter()
    for _ in range(200_000):
        d.feed(delta)
    d.feed(_ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    d.feed(_ev("message_stop", {"type": "message_stop"}))
    r = d.finish()
    assert len(r.text) == 400_000 and time.perf_counter() - t0 < 10


def test_what_a_stream_may_hold_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsrs_anthropic import stream

    monkeypatch.setattr(stream, "MAX_STREAM_CHARS", 1000)
    d = _decoder()
    d.feed(_ev("message_start", START))
    d.feed(_ev("content_block_start", TEXT_BLOCK))
    big = _ev(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 600}},
    )
    d.feed(big)
    with pytest.raises(dsrs.ResponseParseError, match="MAX_STREAM_CHARS=1000"):
        d.feed(big)
    monkeypatch.setattr(stream, "MAX_STREAM_BLOCKS", 3)
    d = _decoder()
    d.feed(_ev("message_start", START))
    for i in range(3):
        d.feed(_ev("content_block_start", {**TEXT_BLOCK, "index": i}))
    with pytest.raises(dsrs.ResponseParseError, match="MAX_STREAM_BLOCKS=3"):
        d.feed(_ev("content_block_start", {**TEXT_BLOCK, "index": 3}))


# --- a streamed answer decodes to the same response as the whole Message --------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dsrs_anthropic.response import decode_message  # noqa: E402
from dsrs_anthropic.testing import sign, transcript  # noqa: E402

_text = st.one_of(st.text(" ab\n", max_size=20), st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
_block = st.one_of(
    _text.map(lambda t: {"type": "text", "text": t}),
    _text.map(lambda t: {"type": "thinking", "thinking": t, "signature": sign(t)}),
    st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(st.integers(-5, 5), _text), max_size=3).map(
        lambda d: {"type": "tool_use", "id": "toolu_1", "name": "f", "input": d}
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    blocks=st.lists(_block, max_size=5),
    stop=st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence"]),
    tokens=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**5)),
    pieces=st.integers(1, 5),
)
def test_stream_and_whole_message_agree(blocks: list[dict[str, Any]], stop: str, tokens: Any, pieces: int) -> None:
    inp, writes, reads, out = tokens
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": inp, "cache_creation_input_tokens": writes,
                  "cache_read_input_tokens": reads, "output_tokens": out},
    }  # fmt: skip
    d = _decoder()
    deltas: list[str] = []
    for raw in transcript(message, pieces=pieces):
        head, data = raw.strip("\n").split("\n", 1)
        chunk = d.feed(SSEEvent(data.removeprefix("data: "), head.removeprefix("event: ")))
        if chunk is not None:
            deltas.append(chunk.text)
    streamed = d.finish()
    whole = decode_message(json.loads(json.dumps(message)), d.request, forced_tool=None)
    assert streamed.text == whole.text == "".join(deltas)
    assert streamed.reasoning == whole.reasoning and streamed.tool_calls == whole.tool_calls
    assert streamed.provider_state == whole.provider_state and streamed.finish_reason == whole.finish_reason
    assert streamed.usage == whole.usage
