"""Base classes for providers that speak HTTP: sending through the transport, failures classified.

:class:`HttpProvider` gives ``send`` / ``open_stream`` that turn transport exceptions and non-2xx
answers into typed errors (via :func:`dsrs._failures.classify_failure`, i.e. the
``dsrs_classify_error`` hook first). :class:`OpenAICompatibleProvider` is a complete provider for
any server speaking the OpenAI Chat Completions wire; vendors subclass it and set class attributes.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from dsrs import _json
from dsrs._failures import classify_failure
from dsrs._provider import ProbeResult, Provider, ProviderConfig, ProviderSpec
from dsrs.errors import LMError, ProviderFailure, ResponseParseError
from dsrs.transport import HttpRequest, HttpResponse, StreamingResponse, TransportError, get_transport
from dsrs.types import LMRequest, LMResponse, StreamChunk
from dsrs.wire import openai_chat
from dsrs.wire._codec import Codec, Endpoint
from dsrs.wire._sse import NDJSONDecoder, SSEDecoder, SSEEvent

__all__ = ["SECRET_HEADERS", "HttpProvider", "OpenAICompatibleProvider", "env_first", "header_secrets"]

DEFAULT_TIMEOUT = 600.0


def env_first(names: tuple[str, ...] | list[str]) -> str | None:
    """The value of the first set environment variable among ``names``, else of a stored key.

    Keys stored with ``dsrs keys set`` are read only when none of ``names`` is set, so an exported
    variable always wins.
    """
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    if names:
        from dsrs._keys import load_keys

        stored = load_keys()
        for name in names:
            value = stored.get(name)
            if value:
                return value
    return None


#: Header names whose values are credentials: redacted wherever a provider reports anything.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "openai-api-key", "cookie"}
)


def header_secrets(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credential values in ``headers`` (and the token of an ``Authorization: Bearer`` value)."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS and value:
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                found.append(token)
    return tuple(found)


class HttpProvider(Provider):
    """A provider whose calls go through the dsrs transport, encoded and decoded by its :attr:`codec`.

    A subclass sets :attr:`codec` (a :class:`~dsrs.wire.Codec`) and calls :meth:`set_endpoint` in its
    ``__init__`` with the base URL and headers (auth included); :meth:`acomplete` and
    :meth:`astream` then run ``encode → send → decode`` and classify failures: the
    ``dsrs_classify_error`` hook first, then ``codec.classify``, then the HTTP status. Every secret
    the provider sends (its config's key and every credential header, wherever the value came from)
    is redacted from errors.
    """

    #: Name of the wire format, put on failures (taken from the codec when there is one).
    wire: ClassVar[str] = "http"
    #: The wire codec (an instance; may be set per provider instance in ``__init__``).
    codec: Codec | None = None

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self._endpoint: Endpoint | None = None

    # --- endpoint and secrets -----------------------------------------------------------------

    def set_endpoint(self, base_url: str, headers: Mapping[str, str] | None = None) -> Endpoint:
        """Where this provider sends; remembers every credential value in ``headers`` as a secret."""
        headers = dict(headers or {})
        secrets = tuple(dict.fromkeys((*self.config.secrets(), *header_secrets(headers))))
        self._endpoint = Endpoint(base_url.rstrip("/"), headers, self.timeout, secrets)
        return self._endpoint

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            if not self.config.base_url:
                raise ValueError(f"provider {self.name!r} needs a base_url (LM(..., base_url='http://host:port'))")
            self.set_endpoint(self.config.base_url)
        assert self._endpoint is not None
        return self._endpoint

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider sends: redacted from errors, probe details and logs."""
        if self._endpoint is not None:
            return self._endpoint.secrets
        return self.config.secrets()

    # --- failures -----------------------------------------------------------------------------

    def failure(
        self,
        request: LMRequest | None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        exception: BaseException | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> LMError:
        """The typed error for a failed call (hook, then the codec, then the status, then the
        exception type). ``code``/``message`` carry a protocol-level error (e.g. an SSE ``error``
        event) that has no HTTP status of its own."""
        codec = self.codec
        return classify_failure(
            ProviderFailure(
                provider=self.name,
                model=request.model if request is not None else None,
                status=status,
                headers=headers or {},
                body=body,
                exception=exception,
                code=code,
                message=message,
                wire=codec.wire if codec is not None else self.wire,
                secrets=self.secrets(),
            ),
            codec=codec,
        )

    @property
    def timeout(self) -> float:
        return self.config.timeout if self.config.timeout is not None else DEFAULT_TIMEOUT

    # --- the call path ------------------------------------------------------------------------

    def _codec(self) -> Codec:
        if self.codec is None:
            raise NotImplementedError(f"{type(self).__name__} sets no codec: set `codec` or override acomplete")
        return self.codec

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        """The HTTP request for ``request`` (the codec's, for this provider's endpoint)."""
        codec = self.codec if self.codec is not None else self._codec()
        return codec.encode(request, self._endpoint or self.endpoint, stream=stream)

    def decode(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        """A 2xx response as an answer; a body of the wrong shape is a ResponseParseError."""
        try:
            return (self.codec if self.codec is not None else self._codec()).decode(request, resp)
        except LMError as exc:
            raise exc.redact_with(self.secrets()) from None
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise self._bad_body(request, exc, resp.content) from None

    def _bad_body(self, request: LMRequest, exc: Exception, body: bytes | str = b"") -> LMError:
        raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
        return ResponseParseError(
            f"unexpected response shape: {type(exc).__name__}: {exc}",
            provider=self.name,
            model=request.model,
            body=raw,
            secrets=self.secrets(),
        )

    async def acomplete(self, request: LMRequest) -> LMResponse:
        resp = await self.send(self.encode(request), request)
        return self.decode(resp, request)

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        codec = self._codec()
        decoder = codec.stream_decoder(request)
        http = self.encode(request, stream=True)
        events = (
            self.stream_events(http, request) if codec.stream_format == "sse" else self._ndjson_events(http, request)
        )
        async for event in events:
            try:
                chunk = decoder.feed(event)
            except LMError as exc:
                raise exc.redact_with(self.secrets()) from None
            except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
                raise self._bad_body(request, exc, event.data) from None
            if chunk is not None:
                yield chunk
        try:
            final = decoder.finish()
        except LMError as exc:
            raise exc.redact_with(self.secrets()) from None
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise self._bad_body(request, exc) from None
        yield StreamChunk(response=final)

    async def _ndjson_events(self, http: HttpRequest, request: LMRequest) -> AsyncIterator[SSEEvent]:
        async for line in self.stream_ndjson(http, request):
            yield SSEEvent(line.decode("utf-8", "replace"))

    # --- transport helpers --------------------------------------------------------------------

    async def send(self, http: HttpRequest, request: LMRequest | None = None) -> HttpResponse:
        """Send; return a 2xx response or raise the classified error."""
        try:
            resp = await get_transport().send(http)
        except TransportError as exc:
            raise self.failure(request, exception=exc) from None
        if not 200 <= resp.status < 300:
            raise self.failure(request, status=resp.status, headers=resp.headers, body=resp.content)
        return resp

    @asynccontextmanager
    async def open_stream(
        self, http: HttpRequest, request: LMRequest | None = None
    ) -> AsyncIterator[StreamingResponse]:
        """Open a streamed response; non-2xx answers raise the classified error with their body."""
        try:
            async with get_transport().stream(http) as resp:
                if not 200 <= resp.status < 300:
                    body = await resp.aread()
                    raise self.failure(request, status=resp.status, headers=resp.headers, body=body)
                yield resp
        except TransportError as exc:
            raise self.failure(request, exception=exc) from None

    async def _decoded(
        self, http: HttpRequest, request: LMRequest | None, decoder: SSEDecoder | NDJSONDecoder
    ) -> AsyncIterator[Any]:
        """Open a streamed response and yield what ``decoder`` parses, as soon as it is parsed."""
        async with self.open_stream(http, request) as resp:
            try:
                async for raw in resp.aiter_bytes():
                    for item in decoder.iter_feed(raw):
                        yield item
                for item in decoder.close():
                    yield item
            except TransportError as exc:
                raise self.failure(request, exception=exc) from None

    async def stream_events(self, http: HttpRequest, request: LMRequest | None = None) -> AsyncIterator[SSEEvent]:
        """Open a streamed response and yield each Server-Sent Event (``event`` name and ``data``)."""
        async for event in self._decoded(http, request, SSEDecoder()):
            yield event

    async def stream_sse(self, http: HttpRequest, request: LMRequest | None = None) -> AsyncIterator[str]:
        """Like :meth:`stream_events`, yielding only each event's ``data``."""
        async for event in self._decoded(http, request, SSEDecoder()):
            yield event.data

    async def stream_ndjson(self, http: HttpRequest, request: LMRequest | None = None) -> AsyncIterator[bytes]:
        """Open a streamed response and yield each newline-delimited JSON line (undecoded)."""
        async for line in self._decoded(http, request, NDJSONDecoder()):
            yield line


class OpenAICompatibleProvider(HttpProvider):
    """Any server speaking OpenAI Chat Completions. Subclass and set the class attributes.

    Attributes:
        default_base_url: used when neither ``LM(base_url=...)`` nor ``base_url_env`` is set.
        base_url_env: environment variables that override the base URL.
        api_key_env: environment variables holding the key (first set wins).
        requires_api_key: a missing key is an :class:`AuthenticationError` before any request.
        wire_options: :class:`dsrs.wire.openai_chat.WireOptions` quirks.
    """

    wire: ClassVar[str] = openai_chat.WIRE
    supports_response_format: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    default_base_url: ClassVar[str | None] = None
    base_url_env: ClassVar[tuple[str, ...]] = ()
    api_key_env: ClassVar[tuple[str, ...]] = ()
    requires_api_key: ClassVar[bool] = False
    wire_options: ClassVar[openai_chat.WireOptions] = openai_chat.DEFAULT_OPTIONS

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        api_key = config.api_key or env_first(self.api_key_env)
        base_url = config.base_url or env_first(self.base_url_env) or self.default_base_url
        if base_url is None:
            raise ValueError(f"provider {spec.name!r} needs a base_url (LM(..., base_url='http://host:port'))")
        super().__init__(
            spec, ProviderConfig(base_url=base_url, api_key=api_key, timeout=config.timeout, options=config.options)
        )
        self.base_url = base_url.rstrip("/")
        self.url = openai_chat.chat_url(self.base_url)
        self.codec = openai_chat.OpenAIChatCodec(self.options_for)
        self.set_endpoint(self.base_url, self.build_headers())

    def build_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    def options_for(self, request: LMRequest) -> openai_chat.WireOptions:
        """Wire quirks (the model family's profile) for this request; override per model."""
        return self.wire_options

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        if self.requires_api_key and not self.config.api_key:
            from dsrs.errors import AuthenticationError

            env = " or ".join(self.api_key_env) or "api_key="
            raise AuthenticationError(f"no API key: set {env}", provider=self.name, model=request.model)
        return super().encode(request, stream=stream)

    @classmethod
    def probe_url(cls, base_url: str) -> str:
        base = base_url.rstrip("/")
        return openai_chat.chat_url(base).rsplit("/chat/completions", 1)[0] + "/models"

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured when a key is present (or none is needed); reachable via ``GET /models``."""
        key = env_first(cls.api_key_env)
        if cls.requires_api_key and not key:
            return ProbeResult(False, None, None, f"set {' or '.join(cls.api_key_env)}")
        base = env_first(cls.base_url_env) or cls.default_base_url
        if base is None:
            return ProbeResult(False, None, None, "no base URL")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        t0 = time.perf_counter()
        try:
            resp = await get_transport().send(HttpRequest("GET", cls.probe_url(base), headers, None, timeout))
        except TransportError as exc:
            return ProbeResult(True, False, None, f"unreachable: {type(exc).__name__}")
        latency = (time.perf_counter() - t0) * 1000
        if resp.status in (401, 403):
            return ProbeResult(True, False, latency, f"key rejected (HTTP {resp.status})")
        if not resp.ok:
            return ProbeResult(True, False, latency, f"HTTP {resp.status}")
        model = None
        try:
            data: Any = _json.loads(resp.content)
            first = (data.get("data") or [None])[0] if isinstance(data, dict) else None
            model = first.get("id") if isinstance(first, dict) else None
        except _json.JSONDecodeError:
            pass
        # A vendor's list starts anywhere (embeddings, old snapshots): its default model is the
        # lane's model. A server without a default (vLLM, LM Studio) serves what it lists.
        return ProbeResult(True, True, latency, "ok", None if spec.default_model else model)
