"""OpenAI chat codec cost after content parts, shape checks and the merged classifier.

Usage::

    python benchmarks/bench_chat_codec.py            # ~20 s
    python benchmarks/bench_chat_codec.py --quick    # ~5 s

Sans-IO (no sockets): encode a four-message request and decode a 60-word answer with usage, and
decode the same answer streamed (60 deltas plus the finish, usage and ``[DONE]`` chunks). The
baseline is the same codec as it was before (``dsrs/wire/openai_chat.py`` at commit 785efcf, read
with ``git show`` and loaded as a module), run in the same process, the two alternating round by
round so machine load hits both alike. Each figure is the median of rounds in microseconds, with
its ratio to the baseline. Run from a git checkout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsrs.transport import HttpResponse
from dsrs.types import LMRequest, Message
from dsrs.wire import Endpoint, SSEEvent, openai_chat

BASELINE_COMMIT = "785efcf"
TEXT = " ".join(f"word{i}" for i in range(60))
ENDPOINT = Endpoint("http://127.0.0.1:1/v1", {"authorization": "Bearer k"}, 30.0)
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 20,
        "completion_tokens": 60,
        "total_tokens": 80,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
REQUEST = LMRequest(
    provider="openai",
    model="gpt-4o-mini",
    messages=(
        Message("system", "Be terse."),
        Message("user", "Describe the benchmark in sixty words."),
        Message("assistant", "Sure."),
        Message("user", "Go on."),
    ),
    temperature=0.2,
    max_tokens=512,
)


def baseline_module() -> types.ModuleType:
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:packages/dsrs-core/src/dsrs/wire/openai_chat.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("openai_chat_baseline")
    module.__dict__["__name__"] = "openai_chat_baseline"
    sys.modules["openai_chat_baseline"] = module
    exec(compile(src, "openai_chat@" + BASELINE_COMMIT, "exec"), module.__dict__)
    return module


def events() -> list[SSEEvent]:
    words = TEXT.split(" ")
    out = []
    for i, w in enumerate(words):
        delta = {"content": w if i == 0 else " " + w}
        out.append(SSEEvent(json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})))
    out.append(SSEEvent(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})))
    out.append(SSEEvent(json.dumps({"choices": [], "usage": COMPLETION["usage"]})))
    out.append(SSEEvent("[DONE]"))
    return out


def call(codec: Any) -> Callable[[], object]:
    response = HttpResponse(200, {"content-type": "application/json"}, json.dumps(COMPLETION).encode())

    def run() -> object:
        codec.encode(REQUEST, ENDPOINT, stream=False)
        return codec.decode(REQUEST, response)

    return run


def stream(codec: Any) -> Callable[[], object]:
    evs = events()

    def run() -> object:
        decoder = codec.stream_decoder(REQUEST)
        for e in evs:
            decoder.feed(e)
        return decoder.finish()

    return run


def per_op_us(fn: Callable[[], object], ops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(ops):
        fn()
    return (time.perf_counter() - t0) / ops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, ops = (5, 1000) if args.quick else (15, 2000)
    old = baseline_module()
    new_codec, old_codec = openai_chat.OpenAIChatCodec(), old.OpenAIChatCodec()
    # both answer alike before anything is timed
    assert call(new_codec)().text == call(old_codec)().text == TEXT  # type: ignore[attr-defined]
    assert stream(new_codec)().text == stream(old_codec)().text == TEXT  # type: ignore[attr-defined]
    print(f"rounds={rounds} x {ops} ops; baseline: the chat codec at {BASELINE_COMMIT}, same run")
    for label, make in (("encode + decode one answer", call), ("decode one streamed answer (60 deltas)", stream)):
        new_fn, old_fn = make(new_codec), make(old_codec)
        new_t: list[float] = []
        old_t: list[float] = []
        for _ in range(rounds):
            new_t.append(per_op_us(new_fn, ops))
            old_t.append(per_op_us(old_fn, ops))
        n, o = statistics.median(new_t), statistics.median(old_t)
        print(f"{label:<40} now {n:8.1f} us   before {o:8.1f} us   ratio {n / o:.2f}")


if __name__ == "__main__":
    main()
