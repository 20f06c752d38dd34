"""Incremental, sans-IO decoders for streamed bodies: Server-Sent Events and NDJSON."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["NDJSONDecoder", "SSEDecoder", "SSEEvent"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
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


class NDJSONDecoder:
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
