"""SSE and NDJSON decoder throughput: the bounded, linear decoders against the previous ones.

Usage::

    .venv/bin/python benchmarks/bench_decoders.py            # full run (~1-2 minutes, 32 MiB lines)
    .venv/bin/python benchmarks/bench_decoders.py --quick    # short run (16 MiB lines)

The baseline is a verbatim copy of the decoders before issue 13 (``OldSSEDecoder``,
``OldNDJSONDecoder`` below, from ``dsrs/wire/_sse.py`` at commit 000432a), run in the same process
and alternated round by round with the current ones, so machine load hits both alike. Workloads:

* **typical stream**: 5,000 OpenAI ``chat.completion.chunk`` events (~190 bytes each), fed one
  event per chunk (a slow model) and in 16 KiB chunks cutting events anywhere (a fast one);
  figure: us/event and events/s, best of the rounds (on a shared 2-core machine the best round is
  the one least disturbed; medians moved by +-40% between runs); target: ratio new/old <= 1.10;
* **long line**: one ``data:`` line of 8, 16 (and 32) MiB without a newline, fed in 64 KiB chunks
  (aiohttp's read size), then ended; figure: seconds; the old decoders grow quadratically. The
  current decoders' bounds (8 MiB default) are lifted for this, so both do the same work.

Pure CPU, no sockets: what is measured is the decoder, not the transport.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial

from dsrs.wire import NDJSONDecoder, SSEDecoder, SSEEvent

MIB = 1024 * 1024


# --- the baseline: the decoders as they were (verbatim but for the class names) ------------------


class OldSSEDecoder:
    """Feed bytes as they arrive; get complete events (per the WHATWG event-stream rules)."""

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return list(self.iter_feed(chunk))

    def iter_feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        """Like :meth:`feed`, but yields each event as soon as it is parsed (the first delta of a
        large chunk reaches the caller before the rest of the chunk is decoded). Exhaust it."""
        buf = self._buf + chunk if self._buf else chunk
        pos = 0  # an offset, not a re-slice per line: a large chunk stays linear to decode
        try:
            while True:
                idx = self._find_eol(buf, pos)
                if idx is None:
                    return
                end, skip = idx
                line = buf[pos:end].decode("utf-8", "replace")
                pos = end + skip
                ev = self._line(line)
                if ev is not None:
                    yield ev
        finally:
            self._buf = buf[pos:]

    @staticmethod
    def _find_eol(buf: bytes, pos: int) -> tuple[int, int] | None:
        n = buf.find(b"\n", pos)
        r = buf.find(b"\r", pos, n if n != -1 else len(buf))
        if r != -1:
            if r + 1 == len(buf):
                return None  # a CR at the end may be the first half of CRLF
            return (r, 2) if buf[r + 1 : r + 2] == b"\n" else (r, 1)
        if n == -1:
            return None
        return n, 1

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data and self._event is None:
                return None
            ev = SSEEvent("\n".join(self._data), self._event, self._id)
            self._data, self._event = [], None
            return ev
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value
        return None

    def close(self) -> list[SSEEvent]:
        """Flush at end of body: a final event without its blank line still counts."""
        out = self.feed(b"\n") if self._buf else []
        if self._data:
            out.append(SSEEvent("\n".join(self._data), self._event, self._id))
            self._data, self._event = [], None
        return out


class OldNDJSONDecoder:
    """Feed bytes; get complete lines (one JSON document each, decoding left to the caller)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        if b"\n" not in self._buf:
            return []
        *lines, self._buf = self._buf.split(b"\n")
        return [ln.strip() for ln in lines if ln.strip()]

    def close(self) -> list[bytes]:
        rest, self._buf = self._buf.strip(), b""
        return [rest] if rest else []


# --- workloads -------------------------------------------------------------------------------------


def _events(n: int) -> bytes:
    out = []
    for i in range(n):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": f" w{i}"}, "finish_reason": None}],
        }
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    return b"".join(out)


def _split_events(data: bytes) -> list[bytes]:
    return [e + b"\n\n" for e in data.split(b"\n\n") if e]


def _split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _sse_events(make: Callable[[], object], chunks: list[bytes]) -> int:
    d = make()
    n = 0
    for c in chunks:
        n += len(d.feed(c))  # type: ignore[attr-defined]
    return n + len(d.close())  # type: ignore[attr-defined]


def _ndjson_lines(make: Callable[[], object], chunks: list[bytes]) -> int:
    d = make()
    n = 0
    for c in chunks:
        n += len(d.feed(c))  # type: ignore[attr-defined]
    return n + len(d.close())  # type: ignore[attr-defined]


def _long_line(make: Callable[[], object], size: int, prefix: bytes) -> int:
    d = make()
    piece = b"x" * (64 * 1024)
    d.feed(prefix)  # type: ignore[attr-defined]
    for _ in range(size // len(piece)):
        d.feed(piece)  # type: ignore[attr-defined]
    return len(d.feed(b"\n\n"))  # type: ignore[attr-defined]


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def _rounds(rounds: int, old: Callable[[], int], new: Callable[[], int]) -> Iterator[tuple[float, float, int]]:
    for r in range(rounds):
        pair = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
        got = {name: _timed(fn) for name, fn in pair}
        assert got["old"][1] == got["new"][1], got  # the same events, or the comparison is void
        yield got["old"][0], got["new"][0], got["new"][1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 21 if args.quick else 61
    sizes = [8 * MIB, 16 * MIB] if args.quick else [8 * MIB, 16 * MIB, 32 * MIB]
    print(
        f"SSE/NDJSON decoders, Python {sys.version.split()[0]}, best of {rounds} alternating rounds, baseline = pre-issue-13 decoders"
    )

    stream = _events(5_000)
    ndjson = stream.replace(b"data: ", b"").replace(b"\n\n", b"\n")
    typical = [
        ("SSE, one event per chunk", _sse_events, OldSSEDecoder, SSEDecoder, _split_events(stream)),
        ("SSE, 16 KiB chunks", _sse_events, OldSSEDecoder, SSEDecoder, _split_every(stream, 16 * 1024)),
        (
            "NDJSON, one line per chunk",
            _ndjson_lines,
            OldNDJSONDecoder,
            NDJSONDecoder,
            ndjson.splitlines(keepends=True),
        ),
        ("NDJSON, 16 KiB chunks", _ndjson_lines, OldNDJSONDecoder, NDJSONDecoder, _split_every(ndjson, 16 * 1024)),
    ]
    for label, run, old_cls, new_cls, chunks in typical:
        samples = list(_rounds(rounds, partial(run, old_cls, chunks), partial(run, new_cls, chunks)))
        n = samples[0][2]
        old_s = min(s[0] for s in samples)
        new_s = min(s[1] for s in samples)
        ratio = new_s / old_s
        print(
            f"{label}: {new_s / n * 1e6:.2f} us/event ({n / new_s:,.0f} events/s)  "
            f"(old {old_s / n * 1e6:.2f} us/event, {n / old_s:,.0f} events/s; ratio {ratio:.2f}, target <= 1.10) "
            f"{'PASS' if ratio <= 1.10 else 'FAIL'}"
        )

    long_rounds = 1 if args.quick else 3
    for size in sizes:
        for label, old_cls, new_make, prefix in (
            ("SSE", OldSSEDecoder, lambda: SSEDecoder(max_line_bytes=64 * MIB, max_event_bytes=64 * MIB), b"data: "),
            ("NDJSON", OldNDJSONDecoder, lambda: NDJSONDecoder(max_line_bytes=64 * MIB), b""),
        ):
            samples = list(
                _rounds(
                    long_rounds,
                    partial(_long_line, old_cls, size, prefix),
                    partial(_long_line, new_make, size, prefix),
                )
            )
            old_s = min(s[0] for s in samples)
            new_s = min(s[1] for s in samples)
            print(
                f"{label}, one {size // MIB} MiB line in 64 KiB chunks: {new_s:.3f} s ({size / new_s / MIB:,.0f} MiB/s)  "
                f"(old {old_s:.2f} s; ratio {new_s / old_s:.3f})"
            )


if __name__ == "__main__":
    main()
