"""The fast transport: aiohttp driven directly (``pip install dsrs-core[fast]``).

Imported only when aiohttp is installed and a transport is first needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from dsrs.transport.base import (
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


class _AiohttpStream(StreamingResponse):
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.headers.items()}

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

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def _timeout(self, t: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=t or _DEFAULT_TIMEOUT, sock_read=t or _DEFAULT_TIMEOUT)

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
                return HttpResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)
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
