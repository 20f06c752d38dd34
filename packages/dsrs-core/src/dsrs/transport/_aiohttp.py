"""The fast transport: aiohttp driven directly (``pip install dsrs-core[fast]``).

Imported only when aiohttp is installed and a transport is first needed. aiohttp's own timeouts,
redirects and decompression are off: deadlines, bounds and gzip/deflate are enforced by
:mod:`dsrs.transport._reading` the same way for both transports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import aiohttp
from multidict import CIMultiDictProxy

from dsrs.transport._base import (
    ConnectError,
    HttpRequest,
    HttpResponse,
    ReadError,
    StreamingResponse,
    Transport,
    TransportError,
    TransportTimeout,
    TruncatedBodyError,
)
from dsrs.transport._deadlines import RequestDeadlines, deadline_scope
from dsrs.transport._decoding import ACCEPT_ENCODING
from dsrs.transport._reading import BoundedBody, declared_within, raise_detached, read_body, within
from dsrs.transport._secrets import debug_logging_on, describe, install_log_filter, remember_secrets

if TYPE_CHECKING:
    from aiohttp.client import _RequestContextManager  # the type of ClientSession.request's result

_DEFAULT_TIMEOUT = 600.0
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None)


def _translate(exc: BaseException, request: HttpRequest) -> TransportError:
    # Only the class name and text survive, with the request's keys masked (aiohttp's texts can
    # hold the URL, and a redirect error's repr held the request headers).
    text = describe(exc, request.headers)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return TransportTimeout(text)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.InvalidURL)):
        return ConnectError(text)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TruncatedBodyError(text)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return ReadError(text)
    return TransportError(text)


def _request(session: aiohttp.ClientSession, request: HttpRequest) -> _RequestContextManager:
    """aiohttp's request for ``request`` (an async context manager, or awaited for the response),
    redirects not followed: a 3xx is the caller's answer."""
    return session.request(
        request.method, request.url, headers=request.headers, data=request.content, allow_redirects=False
    )


class _LowerHeaders(Mapping[str, str]):
    """aiohttp's case-insensitive response headers seen as a lower-case-keyed mapping.

    Built in O(1) per response (a dict comprehension over every header costs microseconds on
    each call, and the headers are read only on failures). Like the dict it replaces, a header sent
    twice reads as its last value.
    """

    __slots__ = ("_h",)

    def __init__(self, headers: CIMultiDictProxy[str]) -> None:
        self._h = headers

    def __getitem__(self, key: str) -> str:
        return self._h.getall(key)[-1]

    def __contains__(self, key: object) -> bool:
        return key in self._h

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k.lower() for k in self._h))

    def __len__(self) -> int:
        return len(set(k.lower() for k in self._h))

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class AiohttpTransport(Transport):
    name = "aiohttp"

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        # The loop the session belongs to (aiohttp binds a session to one loop), found when the
        # session is made: every running-loop lookup is a getpid() system call on Python < 3.12.
        self._loop: asyncio.AbstractEventLoop | None = None
        install_log_filter()

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            self._loop = asyncio.get_running_loop()
            connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300)
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # decoded by BoundedBody, counted against max_body_bytes
                timeout=_NO_TIMEOUT,
                headers={"Accept-Encoding": ACCEPT_ENCODING},
                skip_auto_headers=("User-Agent",),
            )
        return session

    async def send(self, request: HttpRequest) -> HttpResponse:
        # One deadline around the whole exchange (not one per read, as for streams): the hot path.
        session = self._get_session()
        loop = self._loop
        assert loop is not None  # set with the session
        deadline = RequestDeadlines.total_of(request, _DEFAULT_TIMEOUT, loop)
        if debug_logging_on():
            remember_secrets(request.headers)
        scope = deadline_scope(deadline[0], loop)
        try:
            async with _request(session, request) as resp:
                headers = resp.headers
                if declared_within(headers, request.max_body_bytes):  # the usual case: read it whole
                    body = await resp.read()
                else:
                    body = await read_body(headers, request.max_body_bytes, resp.content.readany)
                response = HttpResponse(resp.status, _LowerHeaders(headers), body)
        except BaseException as exc:  # see _reading.within: nothing of the library's stays on the chain
            err = scope.failed(exc, deadline, lambda e: _translate(e, request))
        else:
            scope.leave(None)
            return response
        raise_detached(err)

    @asynccontextmanager
    async def stream(self, request: HttpRequest) -> AsyncIterator[StreamingResponse]:
        session = self._get_session()
        deadlines = RequestDeadlines(request, _DEFAULT_TIMEOUT, self._loop)
        if debug_logging_on():
            remember_secrets(request.headers)

        def translate(exc: BaseException) -> TransportError:
            return _translate(exc, request)

        async def open_response() -> aiohttp.ClientResponse:
            return await _request(session, request)

        resp = await within(deadlines.opening(), open_response, translate, deadlines.loop)
        assert isinstance(resp, aiohttp.ClientResponse)
        body = BoundedBody(
            resp.status, _LowerHeaders(resp.headers), resp.content.readany, translate, request, deadlines
        )
        try:
            yield body
        finally:
            if body.complete:
                resp.release()  # back to the pool
            else:
                resp.close()  # a half-read body: the connection cannot be reused

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
