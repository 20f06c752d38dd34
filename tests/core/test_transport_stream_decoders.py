"""The SSE and NDJSON decoders the transports' streams feed: linear time, bounded lines and events.

A long line arriving in many chunks is decoded in time linear in its length (the old decoders
re-copied and re-searched the whole pending line on every chunk: 32 MB took 3-80 s); a line or an
event past its bound raises :class:`~dsrs.transport.BodyTooLargeError` naming it, as soon as the
bytes past it arrive; however a stream is split, the events are the same as for a reference
parser of the whole text.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsrs.transport import BodyTooLargeError
from dsrs.wire import NDJSONDecoder, SSEDecoder
from dsrs.wire._sse import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_LINE_BYTES

MIB = 1024 * 1024


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _reference_sse(text: str) -> list[tuple[str, str | None, str | None]]:
    """Events of a whole stream per the WHATWG rules, parsed at once (no incremental state)."""
    out: list[tuple[str, str | None, str | None]] = []
    data: list[str] = []
    event: str | None = None
    last_id: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data or event is not None:
                out.append(("\n".join(data), event, last_id))
            data, event = [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            last_id = value
    if data:
        out.append(("\n".join(data), event, last_id))
    return out


_LINES = st.sampled_from(
    ["data: a", "data: b c", "data:x", "event: e", "id: 7", ": ping", "", 'data: {"k": 1}', "retry: 5", "data"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_LINES, max_size=14),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_sse_any_split_and_line_ending_matches_the_reference(lines: list[str], eol: str, cuts: list[int]) -> None:
    text = eol.join(lines) + eol + eol
    decoder = SSEDecoder()
    got = [(e.data, e.event, e.id) for chunk in _split(text.encode(), cuts) for e in decoder.feed(chunk)]
    got += [(e.data, e.event, e.id) for e in decoder.close()]
    assert got == _reference_sse(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([b'{"a":1}', b"", b"  ", b'{"b":[2]}']), max_size=10), st.lists(st.integers(0, 80)))
def test_ndjson_any_split_gives_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    data = b"\n".join(lines)
    decoder = NDJSONDecoder()
    got = [line for chunk in _split(data, cuts) for line in decoder.feed(chunk)] + decoder.close()
    assert got == [ln.strip() for ln in lines if ln.strip()]


def test_stopping_iter_feed_early_keeps_the_rest() -> None:
    sse = SSEDecoder()
    it = sse.iter_feed(b"data: 1\n\ndata: 2\n\ndata: 3\n\n")
    assert next(it).data == "1"
    it.close()  # the caller stopped after the first event
    assert [e.data for e in sse.feed(b"")] == ["2", "3"]
    nd = NDJSONDecoder()
    it2 = nd.iter_feed(b"1\n2\n3\n")
    assert next(it2) == b"1"
    it2.close()
    assert nd.feed(b"") == [b"2", b"3"]


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
def test_a_long_line_in_many_chunks_is_linear(decoder: type[SSEDecoder] | type[NDJSONDecoder]) -> None:
    d = (
        SSEDecoder(max_line_bytes=64 * MIB, max_event_bytes=64 * MIB)
        if decoder is SSEDecoder
        else NDJSONDecoder(max_line_bytes=64 * MIB)
    )
    piece = b"x" * (64 * 1024)
    t0 = time.perf_counter()
    d.feed(b"data: ")
    for _ in range(512):  # 32 MiB in 64 KiB chunks
        assert not d.feed(piece)
    out = d.feed(b"\n\n")
    elapsed = time.perf_counter() - t0
    assert len(out) == 1
    # ~0.15 s here; the quadratic decoder took 3 s (aiohttp chunking) to > 10 s for this.
    assert elapsed < 2.0, f"{elapsed:.2f}s"


@pytest.mark.parametrize(
    ("decoder", "what"), [(SSEDecoder, "an SSE line"), (NDJSONDecoder, "an NDJSON line")], ids=["sse", "ndjson"]
)
def test_line_bound_is_exact_and_named(decoder: type[SSEDecoder] | type[NDJSONDecoder], what: str) -> None:
    ok = decoder(max_line_bytes=100)
    assert ok.feed(b"d" * 100 + b"\n") is not None  # exactly at the bound: fine
    partial = decoder(max_line_bytes=100)
    partial.feed(b"d" * 60)
    with pytest.raises(BodyTooLargeError) as info:
        partial.feed(b"d" * 41)  # 101 bytes and no line end yet: raised now, not at the end
    assert (info.value.bound, info.value.limit) == ("max_line_bytes", 100)
    assert str(info.value) == f"{what} exceeds max_line_bytes=100 bytes"
    whole = decoder(max_line_bytes=100)
    with pytest.raises(BodyTooLargeError):
        whole.feed(b"d" * 101 + b"\n")  # a complete line past the bound in one chunk


def test_sse_event_bound_counts_all_data_lines() -> None:
    d = SSEDecoder(max_line_bytes=1000, max_event_bytes=250)
    assert d.feed(b"data: " + b"a" * 99 + b"\n" + b"data: " + b"b" * 99 + b"\n\n")[0].data.count("a") == 99
    with pytest.raises(BodyTooLargeError) as info:
        d.feed(b"data: " + b"c" * 99 + b"\n" + b"data: " + b"d" * 99 + b"\n" + b"data: " + b"e" * 99 + b"\n")
    assert info.value.bound == "max_event_bytes"


def test_heartbeats_do_not_grow_anything() -> None:
    d = SSEDecoder(max_line_bytes=64, max_event_bytes=64)
    for _ in range(100_000):
        assert d.feed(b": ping\n\n") == []
    assert len(d._buf) == 0 and not d._data


def test_defaults() -> None:
    assert DEFAULT_MAX_LINE_BYTES == DEFAULT_MAX_EVENT_BYTES == 8 * MIB
    assert SSEDecoder().max_line_bytes == NDJSONDecoder().max_line_bytes == DEFAULT_MAX_LINE_BYTES
