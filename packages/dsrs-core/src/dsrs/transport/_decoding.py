"""Content decoding (gzip, deflate) counted against a size bound, in bounded pieces.

Both transports read raw bytes and decode here, so a compressed bomb stops at the bound: every
``decompress`` call produces at most :data:`PIECE` bytes, and the count is of decoded bytes.
Requests advertise only what this module decodes (:data:`ACCEPT_ENCODING`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from dsrs.transport._base import BodyDecodeError, BodyTooLargeError

__all__ = ["ACCEPT_ENCODING", "PIECE", "BodyDecoder"]

ACCEPT_ENCODING = "gzip, deflate"
#: The most one decompression step produces (so an unbounded stream holds little at once).
PIECE = 256 * 1024


class BodyDecoder:
    """Decode a body per its ``content-encoding``; raise :class:`BodyTooLargeError` past ``limit`` bytes."""

    __slots__ = ("_deflate", "_encoding", "_head", "_limit", "_total", "_z")

    def __init__(self, content_encoding: str | None, limit: int | None) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        self._encoding = encoding
        self._limit = limit
        self._total = 0
        self._deflate = False  # "deflate" not yet known to be zlib-wrapped or raw
        self._head = b""
        self._z: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
            self._deflate = True  # servers often send raw deflate (no zlib header): see _sniff
        elif encoding not in ("identity", ""):
            raise BodyDecodeError(f"unsupported content-encoding {content_encoding!r} (dsrs accepts {ACCEPT_ENCODING})")

    @property
    def decoded_bytes(self) -> int:
        return self._total

    def _count(self, n: int) -> None:
        self._total += n
        if self._limit is not None and self._total > self._limit:
            raise BodyTooLargeError("max_body_bytes", self._limit)

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``chunk``, in pieces of at most :data:`PIECE` bytes when compressed."""
        if self._z is None:
            self._count(len(chunk))
            yield chunk
            return
        if self._deflate:
            chunk = self._sniff(chunk, final=False)
            if self._deflate:
                return
        yield from self._inflate(chunk)

    def finish(self) -> Iterator[bytes]:
        """Whatever the decompressor still holds at the end of the body."""
        if self._z is not None:
            yield from self._inflate(self._sniff(b"", final=True) if self._deflate else b"")

    def _sniff(self, chunk: bytes, *, final: bool) -> bytes:
        # A zlib stream starts with CMF/FLG: method 8 and a multiple of 31 (RFC 1950); else raw deflate.
        head = self._head + chunk
        if len(head) < 2 and not final:
            self._head = head
            return b""
        self._head, self._deflate = b"", False
        if not (len(head) >= 2 and head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0):
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        return head

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        z = self._z
        assert z is not None
        while True:
            try:
                out = z.decompress(data, PIECE)
            except zlib.error as exc:
                raise BodyDecodeError(f"corrupt {self._encoding} body: {exc}") from None
            data = z.unconsumed_tail
            if out:
                self._count(len(out))
                yield out
            if not data and len(out) < PIECE:
                return
