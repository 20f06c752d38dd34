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

    __slots__ = ("_deflate", "_encoding", "_limit", "_total", "_z")

    def __init__(self, content_encoding: str | None, limit: int | None) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        self._encoding = encoding
        self._limit = limit
        self._total = 0
        self._deflate = False
        self._z: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
            self._deflate = True  # may turn out to be raw deflate (no zlib header): see _inflate
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
        yield from self._inflate(chunk)

    def finish(self) -> Iterator[bytes]:
        """Whatever the decompressor still holds at the end of the body."""
        if self._z is not None:
            yield from self._inflate(b"")

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        z = self._z
        assert z is not None
        while True:
            try:
                out = z.decompress(data, PIECE)
            except zlib.error as exc:
                if self._deflate and self._total == 0:
                    # "deflate" servers often send raw deflate; retry once without the zlib header.
                    self._deflate = False
                    self._z = z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise BodyDecodeError(f"corrupt {self._encoding} body: {exc}") from None
            self._deflate = False
            data = z.unconsumed_tail
            if out:
                self._count(len(out))
                yield out
            if not data and len(out) < PIECE:
                return
