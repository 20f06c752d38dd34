"""The transport interface: how bytes get to a server and back.

Codecs (``dsrs.wire``) never touch sockets; providers hand an :class:`HttpRequest` to a
:class:`Transport`. Transport errors are dsrs's own (:class:`TransportError` and subclasses), so no
traceback from inside httpx or aiohttp ever reaches a user.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

__all__ = [
    "ConnectError",
    "HttpRequest",
    "HttpResponse",
    "ReadError",
    "StreamingResponse",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "TruncatedBodyError",
]


class TransportError(Exception):
    """The request did not complete at the HTTP level."""


class ConnectError(TransportError):
    """The server could not be reached (refused, DNS, TLS)."""


class TransportTimeout(TransportError):
    """No answer (or no next chunk) in time."""


class ReadError(TransportError):
    """The connection broke while reading the answer."""


class TruncatedBodyError(ReadError):
    """The body ended before its declared length (or the chunked encoding) said it would."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response. ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class StreamingResponse(abc.ABC):
    """A response whose body is read incrementally."""

    status: int
    headers: Mapping[str, str]

    @abc.abstractmethod
    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive."""

    @abc.abstractmethod
    async def aread(self) -> bytes:
        """The rest of the body (used for error bodies)."""


class Transport(abc.ABC):
    """Async HTTP transport: ``send`` for whole responses, ``stream`` for incremental bodies."""

    name: str = "transport"

    @abc.abstractmethod
    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send and read the whole body. Raises :class:`TransportError` subclasses only."""

    @abc.abstractmethod
    def stream(self, request: HttpRequest) -> AbstractAsyncContextManager[StreamingResponse]:
        """``async with transport.stream(req) as resp:`` iterate ``resp.aiter_bytes()``."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections."""
