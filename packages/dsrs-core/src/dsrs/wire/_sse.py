"""Incremental, sans-IO decoders for streamed bodies: Server-Sent Events and NDJSON.

A long line arriving in many chunks costs time linear in its length, not quadratic: the SSE decoder
keeps the undecoded tail in a ``bytearray`` and remembers how far it already searched it for a line
end; the NDJSON decoder keeps a partial line as its chunks and joins them once, when its LF arrives.
Both bound what they hold: a line longer than ``max_line_bytes`` (or an SSE event whose data
exceeds ``max_event_bytes``) raises :class:`~dsrs.transport.BodyTooLargeError` naming the bound,
as soon as the bytes past it arrive. It is a ``TransportError``, so a provider's stream loop that
already turns transport errors into typed ones reports it as a ``ResponseParseError``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

from dsrs.transport._base import BodyTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "DEFAULT_MAX_LINE_BYTES", "NDJSONDecoder", "SSEDecoder", "SSEEvent"]

#: Default bounds: far above any streamed delta (a whole base64 image fits), far below a memory problem.
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024

_LF, _CR = 0x0A, 0x0D


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get complete events (per the WHATWG event-stream rules)."""

    def __init__(
        self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no line end
        self._data: list[str] = []
        self._data_bytes = 0
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return list(self.iter_feed(chunk))

    def iter_feed(self, chunk: bytes) -> Generator[SSEEvent, None, None]:
        """Like :meth:`feed`, but yields each event as soon as it is parsed (the first delta of a
        large chunk reaches the caller before the rest of the chunk is decoded). Exhaust it."""
        # A chunk that starts clean is parsed in place (no copy); a pending tail gets the chunk appended.
        held = bool(self._buf)
        buf: bytes | bytearray = self._buf
        if held:
            self._buf += chunk
        else:
            buf = chunk
        pos = 0  # start of the current line
        scan = self._scanned
        lf = -2  # cached position of the next LF at or after scan (-1: none; -2: not searched)
        try:
            while True:
                if lf != -1 and lf < scan:
                    lf = buf.find(b"\n", scan)
                cr = buf.find(b"\r", scan, lf if lf != -1 else len(buf))
                if cr != -1:
                    if cr + 1 == len(buf):
                        scan = cr  # a CR at the end may be the first half of CRLF
                        break
                    end, nxt = cr, cr + 2 if buf[cr + 1] == _LF else cr + 1
                elif lf != -1:
                    end, nxt = lf, lf + 1
                else:
                    scan = len(buf)
                    break
                if end - pos > self.max_line_bytes:
                    raise BodyTooLargeError("max_line_bytes", self.max_line_bytes, "an SSE line")
                line = buf[pos:end].decode("utf-8", "replace")
                pos = scan = nxt
                ev = self._line(line)
                if ev is not None:
                    yield ev
            if len(buf) - pos > self.max_line_bytes:
                raise BodyTooLargeError("max_line_bytes", self.max_line_bytes, "an SSE line")
        except BodyTooLargeError:
            # The decoder is done: let go of what it held (the error's traceback keeps this frame).
            self._buf, self._data, buf, pos, scan = bytearray(), [], b"", 0, 0
            raise
        finally:
            if held:
                del self._buf[:pos]  # O(1) amortized at the front of a bytearray
            elif pos < len(buf):
                self._buf = bytearray(memoryview(buf)[pos:])
            self._scanned = scan - pos

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data and self._event is None:
                return None
            ev = SSEEvent("\n".join(self._data), self._event, self._id)
            self._data, self._data_bytes, self._event = [], 0, None
            return ev
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data_bytes += len(value) + 1
            if self._data_bytes > self.max_event_bytes:
                raise BodyTooLargeError("max_event_bytes", self.max_event_bytes, "an SSE event's data")
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
            self._data, self._data_bytes, self._event = [], 0, None
        return out


class NDJSONDecoder:
    """Feed bytes; get complete lines (one JSON document each, decoding left to the caller)."""

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        # The partial last line, as the chunks it came in (joined once, when its LF arrives: linear).
        self._parts: list[bytes] = []
        self._pending = 0
        self._ready: deque[bytes] = deque()  # lines found but not taken (iter_feed closed early)

    def feed(self, chunk: bytes) -> list[bytes]:
        nl = chunk.rfind(b"\n")
        if nl == -1:
            if chunk:
                self._parts.append(chunk)
                self._pending += len(chunk)
                if self._pending > self.max_line_bytes:
                    self._parts, self._pending = [], 0  # the decoder is done: let go of the line
                    raise BodyTooLargeError("max_line_bytes", self.max_line_bytes, "an NDJSON line")
            return self._take_ready([])
        head = chunk[:nl]
        if self._parts:
            self._parts.append(head)
            head = b"".join(self._parts)
        tail = chunk[nl + 1 :]
        self._parts = [tail] if tail else []
        self._pending = len(tail)
        lines = head.split(b"\n")  # at C speed; the bound is checked on the lengths
        if (len(head) > self.max_line_bytes and max(map(len, lines)) > self.max_line_bytes) or (
            self._pending > self.max_line_bytes
        ):
            del head, lines  # the error's traceback keeps this frame: not the lines with it
            self._parts, self._pending = [], 0
            raise BodyTooLargeError("max_line_bytes", self.max_line_bytes, "an NDJSON line")
        return self._take_ready([line for line in map(bytes.strip, lines) if line])

    def _take_ready(self, lines: list[bytes]) -> list[bytes]:
        if not self._ready:
            return lines
        out = [*self._ready, *lines]
        self._ready.clear()
        return out

    def iter_feed(self, chunk: bytes) -> Generator[bytes, None, None]:
        """Like :meth:`feed`, one line at a time; lines not taken (the generator closed early) stay queued."""
        lines = self.feed(chunk)
        taken = 0
        try:
            for line in lines:
                yield line
                taken += 1
        finally:
            # The line at ``taken`` was handed out when the caller stopped; the rest wait for the next feed.
            self._ready.extend(lines[taken + 1 :])

    def close(self) -> list[bytes]:
        rest = b"".join(self._parts).strip()
        out = [*self._ready, *([rest] if rest else [])]
        self._parts, self._pending = [], 0
        self._ready.clear()
        return out
