"""Incremental SSE and NDJSON decoding, however the bytes are split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dsrs.wire._sse import NDJSONDecoder, SSEDecoder

STREAM = b'data: {"a":1}\n\n: comment\n\nevent: done\ndata: line1\r\ndata: line2\r\n\r\ndata: [DONE]\n\n'


def _decode(chunks: list[bytes]) -> list[tuple[str, str | None]]:
    d = SSEDecoder()
    out = []
    for c in chunks:
        out += [(e.data, e.event) for e in d.feed(c)]
    out += [(e.data, e.event) for e in d.close()]
    return out


def test_whole_stream() -> None:
    assert _decode([STREAM]) == [('{"a":1}', None), ("line1\nline2", "done"), ("[DONE]", None)]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert _decode(chunks) == _decode([STREAM])


def test_final_event_without_blank_line_is_flushed() -> None:
    assert _decode([b"data: last"]) == [("last", None)]


def test_ndjson_lines() -> None:
    d = NDJSONDecoder()
    assert d.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert d.feed(b":2}\n\n") == [b'{"b":2}']
    assert d.feed(b'{"c":3}') == []
    assert d.close() == [b'{"c":3}']
