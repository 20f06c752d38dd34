"""The transport interface: how bytes get to a server and back.

Codecs (``dsrs.wire``) never touch sockets; providers hand an :class:`HttpRequest` to a
:class:`Transport`. Transport errors are dsrs's own (:class:`TransportError` and subclasses), so no
traceback from inside httpx or aiohttp ever reaches a user, and none of them keeps the client
library's exception (which may hold the request headers) on ``__cause__`` or ``__context__``.

Deadlines and bounds (both transports enforce the same ones):

* ``timeout`` is the whole exchange's deadline, in seconds from the call: connect, headers and the
  whole body for :meth:`Transport.send`; for :meth:`Transport.stream` it bounds opening the stream
  *and* every read of its body, so a server dripping bytes or heartbeats cannot outlive it.
* ``first_byte_timeout`` (streams): the first body chunk must arrive this soon after the call.
* ``idle_timeout`` (streams): each later read must return a chunk this soon. Any bytes count,
  SSE heartbeat comments included: a heartbeat is the server saying it is alive; ``timeout`` bounds
  a server that only ever sends heartbeats.
* ``max_body_bytes``: a body read whole (``send``, ``StreamingResponse.aread``) may hold this many
  bytes *after* content decoding (gzip/deflate), so a compressed bomb stops at the bound. A
  streamed body is not bounded in total (it is not held); the SSE/NDJSON decoders bound each line
  and event instead.

Expiry raises :class:`TransportTimeout`, a bound :class:`BodyTooLargeError` naming it. Redirects
are never followed: a 3xx response is returned as it is (API calls do not redirect, and following
one would send the request's keys to wherever the server points).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from dsrs._frozen import fast_init

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BodyDecodeError",
    "BodyTooLargeError",
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

#: Default :attr:`HttpRequest.max_body_bytes`: far above any chat answer, far below a memory problem.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class TransportError(Exception):
    """The request did not complete at the HTTP level."""


class ConnectError(TransportError):
    """The server could not be reached (refused, DNS, TLS)."""


class TransportTimeout(TransportError):
    """A deadline of the request passed (``timeout``, ``first_byte_timeout`` or ``idle_timeout``).

    ``deadline`` names which one, ``seconds`` its value.
    """

    def __init__(self, message: str, *, deadline: str = "timeout", seconds: float | None = None) -> None:
        super().__init__(message)
        self.deadline = deadline
        self.seconds = seconds


class ReadError(TransportError):
    """The connection broke while reading the answer."""


class TruncatedBodyError(ReadError):
    """The body ended before its declared length (or the chunked encoding) said it would."""


class BodyTooLargeError(TransportError):
    """A response exceeded a size bound; ``bound`` names it (``"max_body_bytes"``, ``"max_line_bytes"``,
    ``"max_event_bytes"``) and ``limit`` is its value in bytes."""

    def __init__(self, bound: str, limit: int, what: str = "response body") -> None:
        super().__init__(f"{what} exceeds {bound}={limit} bytes")
        self.bound = bound
        self.limit = limit


class BodyDecodeError(TransportError):
    """The body's ``content-encoding`` is unknown or its compressed data is corrupt."""


@fast_init
@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP exchange. Timeouts are in seconds (``None``: no such deadline); see the module doc."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


@fast_init
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
    """A response whose body is read incrementally (content-decoded, within the request's deadlines)."""

    status: int
    headers: Mapping[str, str]

    @abc.abstractmethod
    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive."""

    @abc.abstractmethod
    async def aread(self) -> bytes:
        """The rest of the body (used for error bodies), at most ``max_body_bytes``."""


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
