"""The default transport, on ``httpx.AsyncClient``.

httpx's own timeouts and redirects are off and bodies are read raw: deadlines, bounds and
gzip/deflate are enforced by :mod:`dsrs.transport._reading` the same way for both transports.
"""

from __future__ import annotations

import asyncio
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
from dsrs.transport._deadlines import RequestDeadlines, deadline_scope
from dsrs.transport._decoding import ACCEPT_ENCODING
from dsrs.transport._reading import BoundedBody, raise_detached, read_body, within
from dsrs.transport._secrets import debug_logging_on, describe, install_log_filter, remember_secrets

_DEFAULT_TIMEOUT = 600.0
_NO_TIMEOUT = httpx.Timeout(None)


def _translate(exc: BaseException, request: HttpRequest) -> TransportError:
    # Only the class name and text survive (httpx errors carry the request object, headers included).
    text = describe(exc, request.headers)
    if isinstance(exc, httpx.TimeoutException):
        return TransportTimeout(text)
    if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ConnectError(text)
    if isinstance(exc, httpx.RemoteProtocolError) and "complete message body" in str(exc):
        return TruncatedBodyError(text)
    if isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)):
        return ReadError(text)
    return TransportError(text)


class HttpxTransport(Transport):
    name = "httpx"

    def __init__(self, client: httpx.AsyncClient | None = None, **client_kwargs: Any) -> None:
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=256)
        self._client = client or httpx.AsyncClient(limits=limits, **client_kwargs)
        install_log_filter()

    def _build(self, request: HttpRequest) -> httpx.Request:
        return self._client.build_request(
            request.method,
            request.url,
            # Only what read_body/BoundedBody decode (httpx would add br/zstd when their packages are installed).
            headers={"accept-encoding": ACCEPT_ENCODING, **request.headers},
            content=request.content,
            timeout=_NO_TIMEOUT,
        )

    async def send(self, request: HttpRequest) -> HttpResponse:
        # One deadline around the whole exchange (not one per read, as for streams): the hot path.
        loop = asyncio.get_running_loop()
        deadline = RequestDeadlines.total_of(request, _DEFAULT_TIMEOUT, loop)
        if debug_logging_on():
            remember_secrets(request.headers)
        scope = deadline_scope(deadline[0], loop)
        try:
            resp = await self._client.send(self._build(request), stream=True, follow_redirects=False)
            try:
                raw = resp.aiter_raw()

                async def read() -> bytes:
                    return await anext(raw, b"")

                body = await read_body(resp.headers, request.max_body_bytes, read)
            finally:
                await resp.aclose()
            response = HttpResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, body)
        except BaseException as exc:  # see _reading.within: nothing of the library's stays on the chain
            err = scope.failed(exc, deadline, lambda e: _translate(e, request))
        else:
            scope.leave(None)
            return response
        raise_detached(err)

    @asynccontextmanager
    async def stream(self, request: HttpRequest) -> AsyncIterator[StreamingResponse]:
        client = self._client
        deadlines = RequestDeadlines(request, _DEFAULT_TIMEOUT)
        if debug_logging_on():
            remember_secrets(request.headers)

        def translate(exc: BaseException) -> TransportError:
            return _translate(exc, request)

        async def open_response() -> httpx.Response:
            return await client.send(self._build(request), stream=True, follow_redirects=False)

        resp = await within(deadlines.opening(), open_response, translate, deadlines.loop)
        assert isinstance(resp, httpx.Response)
        raw = resp.aiter_raw()

        async def read() -> bytes:
            return await anext(raw, b"")

        headers = {k.lower(): v for k, v in resp.headers.items()}
        try:
            yield BoundedBody(resp.status_code, headers, read, translate, request, deadlines)
        finally:
            close_raw = getattr(raw, "aclose", None)
            if close_raw is not None:
                await close_raw()
            await resp.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
