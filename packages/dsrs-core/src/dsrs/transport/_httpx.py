"""The default transport, on ``httpx.AsyncClient``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

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


def _translate(exc: httpx.HTTPError) -> TransportError:
    msg = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransportTimeout(msg)
    if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ConnectError(msg)
    if isinstance(exc, httpx.RemoteProtocolError) and "complete message body" in str(exc):
        return TruncatedBodyError(msg)
    if isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)):
        return ReadError(msg)
    return TransportError(msg)


def _timeout(t: float | None) -> httpx.Timeout:
    return httpx.Timeout(t if t is not None else _DEFAULT_TIMEOUT)


class _HttpxStream(StreamingResponse):
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code
        self.headers = {k.lower(): v for k, v in resp.headers.items()}

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise _translate(exc) from None

    async def aread(self) -> bytes:
        try:
            return await self._resp.aread()
        except httpx.HTTPError as exc:
            raise _translate(exc) from None


class HttpxTransport(Transport):
    name = "httpx"

    def __init__(self, client: httpx.AsyncClient | None = None, **client_kwargs: Any) -> None:
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=256)
        self._client = client or httpx.AsyncClient(limits=limits, **client_kwargs)

    async def send(self, request: HttpRequest) -> HttpResponse:
        try:
            resp = await self._client.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                content=request.content,
                timeout=_timeout(request.timeout),
            )
        except httpx.HTTPError as exc:
            raise _translate(exc) from None
        return HttpResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content)

    @asynccontextmanager
    async def stream(self, request: HttpRequest) -> AsyncIterator[StreamingResponse]:
        req = self._client.build_request(
            request.method,
            request.url,
            headers=dict(request.headers),
            content=request.content,
            timeout=_timeout(request.timeout),
        )
        try:
            resp = await self._client.send(req, stream=True)
        except httpx.HTTPError as exc:
            raise _translate(exc) from None
        try:
            yield _HttpxStream(resp)
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
