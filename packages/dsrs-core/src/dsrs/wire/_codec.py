"""The codec contract every HTTP provider implements: encode, decode, decode a stream, classify.

A codec is sans-IO: it turns an :class:`~dsrs.types.LMRequest` into an
:class:`~dsrs.transport.HttpRequest` for an :class:`Endpoint`, and an
:class:`~dsrs.transport.HttpResponse` (or the events of a streamed body) into an
:class:`~dsrs.types.LMResponse`, and claims the failures its wire describes with structured fields.
It never touches a socket, so golden request bodies and error tables need no server.
:class:`~dsrs.wire.HttpProvider` runs ``encode → send → decode`` once for every codec, asks the
``dsrs_classify_error`` hook first (the override point), then :meth:`Codec.classify`, then the HTTP
status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dsrs.errors import LMError, ProviderFailure
    from dsrs.transport import HttpRequest, HttpResponse
    from dsrs.types import LMRequest, LMResponse, StreamChunk
    from dsrs.wire._sse import SSEEvent

__all__ = ["DEFAULT_MAX_TOKENS", "Codec", "Endpoint", "StreamDecoder", "StreamFormat"]

#: The output cap sent when a wire requires one and the LM sets none (Anthropic's ``max_tokens``),
#: and the cap a budget reservation assumes for an LM without ``max_tokens``: one number, so what is
#: reserved and what may be billed agree.
DEFAULT_MAX_TOKENS = 4096

StreamFormat = Literal["sse", "ndjson"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how a provider instance sends: base URL, headers (auth included) and timeout.

    ``secrets`` are every credential value in ``headers`` (and any other the provider holds): the
    provider redacts each of them from errors, probe details and logs.
    """

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 600.0
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def url(self, path: str) -> str:
        """``base_url`` joined with ``path`` (exactly one slash between them)."""
        if not path:
            return self.base_url
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@runtime_checkable
class StreamDecoder(Protocol):
    """Decodes the events of one streamed answer, in order."""

    def feed(self, event: SSEEvent) -> StreamChunk | None:
        """One event (for NDJSON wires, ``event.data`` is the line and ``event.event`` is ``None``);
        return a chunk with new text/reasoning, or ``None``. Raise a typed ``LMError`` for an error
        the stream reports (an ``error`` event, an error object inside a chunk)."""
        ...

    def finish(self) -> LMResponse:
        """The whole answer after the last event; :class:`~dsrs.errors.ResponseParseError` if the
        stream ended before its final event."""
        ...


@runtime_checkable
class Codec(Protocol):
    """A wire format. Implementations are small classes; instances may hold per-provider settings."""

    #: Wire name, put on failures (``"openai-chat"``, ``"anthropic-messages"``).
    wire: str
    #: How a streamed body is framed.
    stream_format: StreamFormat

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        """The HTTP request for ``request``. Raise ``InvalidRequestError`` (e.g.
        :class:`~dsrs.types.UnsupportedPartError`) for what the wire cannot carry, before sending."""
        ...

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        """A 2xx response as an answer; :class:`~dsrs.errors.ResponseParseError` for a malformed body."""
        ...

    def stream_decoder(self, request: LMRequest) -> StreamDecoder:
        """A fresh decoder for one streamed answer."""
        ...

    def classify(self, failure: ProviderFailure) -> LMError | None:
        """The typed error for a failure this wire describes (structured fields only), or ``None``."""
        ...
