"""However the network cuts the NDJSON byte stream, the decoded answer is the same (property test)."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dsrs.wire import NDJSONDecoder
from dsrs_ollama import wire

LINES = [
    {"model": "llama2", "message": {"role": "assistant", "content": "", "thinking": "hmm…"}, "done": False},
    {"model": "llama2", "message": {"role": "assistant", "content": "Héllo"}, "done": False},
    {"model": "llama2", "message": {"role": "assistant", "content": ", wörld 🌍"}, "done": False},
    {
        "model": "llama2",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 7,
        "eval_count": 3,
        "eval_duration": 1_000_000_000,
    },
]
STREAM = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in LINES).encode()


def decode(pieces: list[bytes]) -> tuple[str, str, int, int]:
    lines, dec = NDJSONDecoder(), wire.ChatStreamDecoder(model="llama2")
    deltas = []
    for piece in pieces:
        for line in lines.feed(piece):
            chunk = dec.feed(line)
            if chunk is not None:
                deltas.append(chunk.text)
    for line in lines.close():
        dec.feed(line)
    r = dec.finish()
    assert "".join(deltas) == r.text
    return r.text, r.reasoning or "", r.usage.prompt_tokens, r.usage.completion_tokens


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_decodes_the_same(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode(pieces) == ("Héllo, wörld 🌍", "hmm…", 7, 3)
