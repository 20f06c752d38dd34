"""A response body read within the request's deadlines and size bound, content-decoded.

Both transports hand :class:`BoundedBody` (streams) or :func:`read_body` (``send``) a function
returning the next raw chunk (``b""`` at the end) plus their exception translation; deadlines,
decoding and bounds live here once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import NoReturn

from dsrs.transport._base import BodyTooLargeError, HttpRequest, StreamingResponse, TransportError
from dsrs.transport._deadlines import Deadline, RequestDeadlines, deadline_scope
from dsrs.transport._decoding import BodyDecoder

__all__ = ["BoundedBody", "declared_within", "raise_detached", "read_body", "within"]


def raise_detached(err: TransportError) -> NoReturn:
    """Raise ``err`` with no ``__context__``: outside an ``except`` block that is already so, except
    on Python 3.10, where a coroutine can still see the library's exception as being handled."""
    try:
        raise err
    finally:
        err.__context__ = None


async def within(
    deadline: Deadline,
    step: Callable[[], Awaitable[object]],
    translate: Callable[[BaseException], TransportError],
    loop: asyncio.AbstractEventLoop | None = None,
) -> object:
    """``await step()`` (a call into the HTTP library) before ``deadline``; whatever the library
    raises becomes a :class:`TransportError` (hostile input can surface more than its documented
    errors: an ``ExceptionGroup`` from a port out of range, a ``ValueError`` from a header).

    The error is raised outside the ``except`` block, so the library's exception (which may hold the
    request and its headers) is neither ``__cause__`` nor ``__context__`` of what the caller sees.
    """
    scope = deadline_scope(deadline[0], loop)
    try:
        result = await step()
    except BaseException as exc:
        err = scope.failed(exc, deadline, translate)
    else:
        scope.leave(None)
        return result
    raise_detached(err)


class BoundedBody(StreamingResponse):
    """The body of one response; ``complete`` once it was read to its end."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        read: Callable[[], Awaitable[bytes]],
        translate: Callable[[BaseException], TransportError],
        request: HttpRequest,
        deadlines: RequestDeadlines,
    ) -> None:
        self.status = status
        self.headers = headers
        self._read = read
        self._translate = translate
        self._request = request
        self._deadlines = deadlines
        self._started = False
        self.complete = False

    async def _next(self) -> bytes:
        deadlines = self._deadlines
        chunk = await within(deadlines.reading(not self._started), self._read, self._translate, deadlines.loop)
        assert isinstance(chunk, bytes)
        self._started = True
        return chunk

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        decoder = BodyDecoder(self.headers.get("content-encoding"), None)
        while chunk := await self._next():
            for piece in decoder.decode(chunk):
                yield piece
        for piece in decoder.finish():
            yield piece
        self.complete = True

    async def aread(self) -> bytes:
        body = await read_body(self.headers, self._request.max_body_bytes, self._next)
        self.complete = True
        return body


async def read_body(headers: Mapping[str, str], limit: int, read_chunk: Callable[[], Awaitable[bytes]]) -> bytes:
    """A whole body of at most ``limit`` decoded bytes, read chunk by chunk and counted (chunked,
    compressed or plain). ``headers.get`` must ignore case. A plain body declaring a longer
    ``content-length`` is refused before a byte is read; a transport whose library reads a plain body
    of declared length in one go asks :func:`declared_within` first and reads it so.
    """
    declared_within(headers, limit)
    decoder = BodyDecoder(headers.get("content-encoding"), limit)
    parts: list[bytes] = []
    try:
        while chunk := await read_chunk():
            parts.extend(decoder.decode(chunk))
        parts.extend(decoder.finish())
    except BaseException:
        # The error's traceback keeps this frame, and so the body read so far, alive for as long
        # as the error is (a retry of the call would hold two bodies at once): drop it now.
        parts.clear()
        raise
    return parts[0] if len(parts) == 1 else b"".join(parts)


def declared_within(headers: Mapping[str, str], limit: int) -> bool:
    """Whether the body is plain (no content coding) with a ``content-length`` of at most ``limit``:
    then the library's own read, which stops at that length, may read it whole. A longer one is
    refused before a byte is read. ``headers.get`` must ignore case."""
    encoding = headers.get("content-encoding")
    if encoding and encoding.lower() != "identity":
        return False
    declared = _declared_length(headers)
    if declared is None:
        return False
    if declared > limit:
        raise BodyTooLargeError("max_body_bytes", limit)
    return True


def _declared_length(headers: Mapping[str, str]) -> int | None:
    try:
        return int(headers.get("content-length") or "")
    except ValueError:
        return None
