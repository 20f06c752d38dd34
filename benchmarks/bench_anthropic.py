"""dsrs-anthropic codec cost: encode + decode one answer, and decode one streamed answer.

Usage::

    python benchmarks/bench_anthropic.py            # ~20 s
    python benchmarks/bench_anthropic.py --quick    # ~5 s

Sans-IO, so only the codec is measured (no sockets). The baseline, measured in the same run on the
same machine, is dsrs's OpenAI Chat Completions codec doing the same work: the same three-message
request, an answer of the same text and usage, and a stream of the same deltas. Each figure is the
median of rounds (each round alternates the two codecs) in microseconds, with its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from dsrs.transport import HttpResponse
from dsrs.types import LMRequest, Message
from dsrs.wire import Endpoint, OpenAIChatCodec, SSEEvent
from dsrs_anthropic.codec import AnthropicCodec
from dsrs_anthropic.testing import transcript

TEXT = " ".join(f"word{i}" for i in range(60))
ENDPOINT = Endpoint("http://127.0.0.1:1", {"x-api-key": "k", "authorization": "Bearer k"}, 30.0)


def request(provider: str) -> LMRequest:
    msgs = (
        Message("system", "Be terse."),
        Message("user", "Describe the benchmark in sixty words."),
        Message("assistant", "Sure."),
        Message("user", "Go on."),
    )
    return LMRequest(provider=provider, model="claude-sonnet-4-5", messages=msgs, temperature=0.2, max_tokens=512)


ANTHROPIC_MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": TEXT}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 20, "output_tokens": 60, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
}
OPENAI_COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "model": "claude-sonnet-4-5",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 60, "total_tokens": 80},
}


def anthropic_events() -> list[SSEEvent]:
    out = []
    for raw in transcript(ANTHROPIC_MESSAGE):
        head, data = raw.strip().split("\n")
        out.append(SSEEvent(data.removeprefix("data: "), head.removeprefix("event: ")))
    return out


def openai_events() -> list[SSEEvent]:
    words = TEXT.split(" ")
    out = []
    for i, w in enumerate(words):
        delta = {"content": w if i == 0 else " " + w}
        out.append(SSEEvent(json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})))
    out.append(SSEEvent(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})))
    out.append(SSEEvent(json.dumps({"choices": [], "usage": OPENAI_COMPLETION["usage"]})))
    out.append(SSEEvent("[DONE]"))
    return out


def time_us(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (5, 500) if args.quick else (15, 2000)

    a_codec, o_codec = AnthropicCodec(), OpenAIChatCodec()
    a_req, o_req = request("anthropic"), request("openai")
    a_resp = HttpResponse(200, {}, json.dumps(ANTHROPIC_MESSAGE).encode())
    o_resp = HttpResponse(200, {}, json.dumps(OPENAI_COMPLETION).encode())
    a_events, o_events = anthropic_events(), openai_events()

    def a_call() -> object:
        a_codec.encode(a_req, ENDPOINT, stream=False)
        return a_codec.decode(a_req, a_resp)

    def o_call() -> object:
        o_codec.encode(o_req, ENDPOINT, stream=False)
        return o_codec.decode(o_req, o_resp)

    def a_stream() -> object:
        d = a_codec.stream_decoder(a_req)
        for e in a_events:
            d.feed(e)
        return d.finish()

    def o_stream() -> object:
        d = o_codec.stream_decoder(o_req)
        for e in o_events:
            d.feed(e)
        return d.finish()

    assert a_stream().text == o_stream().text == TEXT  # type: ignore[attr-defined]
    cases = {
        "encode + decode one answer": (a_call, o_call),
        "decode one streamed answer (60 deltas)": (a_stream, o_stream),
    }
    print(f"rounds={rounds} x {n} ops; baseline: dsrs's OpenAI chat codec, same run")
    for name, (ours, base) in cases.items():
        mine, theirs = [], []
        for _ in range(rounds):
            mine.append(time_us(ours, n))
            theirs.append(time_us(base, n))
        m, t = statistics.median(mine), statistics.median(theirs)
        print(f"{name:40s} anthropic {m:7.1f} us   openai-chat {t:7.1f} us   ratio {m / t:.2f}")


if __name__ == "__main__":
    main()
