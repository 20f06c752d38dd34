"""However the network cuts the SSE byte stream, the decoded answer is the same (property test)."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dsrs.wire import SSEDecoder
from dsrs_google import wire

EVENTS = [
    {"candidates": [{"content": {"parts": [{"text": "Thinking…", "thought": True}], "role": "model"}}]},
    {
        "candidates": [{"content": {"parts": [{"text": "Héllo"}], "role": "model"}}],
        "usageMetadata": {"promptTokenCount": 4},
    },
    {"candidates": [{"content": {"parts": [{"text": ", wörld 🌍"}], "role": "model"}}]},
    {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}], "role": "model"},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 4,
            "candidatesTokenCount": 6,
            "thoughtsTokenCount": 2,
            "totalTokenCount": 12,
        },
    },
]
STREAM = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in EVENTS).encode()


def decode(pieces: list[bytes]) -> tuple[str, str, tuple[str, ...], tuple[int, int, int]]:
    sse, dec = SSEDecoder(), wire.GeminiStreamDecoder(model="gemini-2.5-flash")
    deltas = []
    for piece in pieces:
        for event in sse.feed(piece):
            chunk = dec.feed(event.data)
            if chunk is not None:
                deltas.append(chunk.text)
    for event in sse.close():
        dec.feed(event.data)
    r = dec.finish()
    assert "".join(deltas) == r.text
    return (
        r.text,
        r.reasoning or "",
        tuple(c.name for c in r.tool_calls),
        (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.reasoning_tokens),
    )


EXPECTED = ("Héllo, wörld 🌍", "Thinking…", ("f",), (4, 8, 2))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_decodes_the_same(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode(pieces) == EXPECTED
