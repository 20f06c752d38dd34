"""The fast transport: aiohttp driven directly (``pip install dsrs-core[fast]``).

Imported only when aiohttp is installed and a transport is first needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager

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

_DEFAULT_TIMEOUT = 600.0


def _translate(exc: BaseException) -> TransportError:
    msg = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return TransportTimeout(msg)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.InvalidURL)):
        return ConnectError(msg)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TruncatedBodyError(msg)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return ReadError(msg)
    return TransportError(msg)


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


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


class _AiohttpStream(StreamingResponse):
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = _LowerHeaders(resp.headers)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except _ERRORS as exc:
            raise _translate(exc) from None

    async def aread(self) -> bytes:
        try:
            return await self._resp.read()
        except _ERRORS as exc:
            raise _translate(exc) from None


class AiohttpTransport(Transport):
    name = "aiohttp"

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300)
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return session

    def _timeout(self, t: float | None) -> aiohttp.ClientTimeout:
        # One ClientTimeout per distinct value, not one per call (they are immutable).
        timeout = self._timeouts.get(t)
        if timeout is None:
            seconds = t or _DEFAULT_TIMEOUT
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
            if len(self._timeouts) < 64:
                self._timeouts[t] = timeout
        return timeout

    async def send(self, request: HttpRequest) -> HttpResponse:
        session = self._get_session()
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.content,
                timeout=self._timeout(request.timeout),
            ) as resp:
                body = await resp.read()
                return HttpResponse(resp.status, _LowerHeaders(resp.headers), body)
        except _ERRORS as exc:
            raise _translate(exc) from None

    @asynccontextmanager
    async def stream(self, request: HttpRequest) -> AsyncIterator[StreamingResponse]:
        session = self._get_session()
        try:
            resp = await session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.content,
                timeout=self._timeout(request.timeout),
            )
        except _ERRORS as exc:
            raise _translate(exc) from None
        try:
            yield _AiohttpStream(resp)
        finally:
            resp.release()

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
