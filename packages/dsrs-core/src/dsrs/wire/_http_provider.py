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
from dsrs.errors import LMError
from dsrs.plugins._types import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse, StreamingResponse, TransportError, get_transport
from dsrs.types import LMRequest, LMResponse, StreamChunk
from dsrs.wire import openai_chat
from dsrs.wire._sse import NDJSONDecoder, SSEDecoder

__all__ = ["HttpProvider", "OpenAICompatibleProvider", "env_first"]

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


class HttpProvider(Provider):
    """A provider whose calls go through the dsrs transport."""

    #: Name of the wire format, put on failures so codec classifiers can claim them.
    wire: ClassVar[str] = "http"

    def failure(
        self,
        request: LMRequest | None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        exception: BaseException | None = None,
    ) -> LMError:
        return classify_failure(
            ProviderFailure(
                provider=self.name,
                model=request.model if request is not None else None,
                status=status,
                headers=headers or {},
                body=body,
                exception=exception,
                code=None,
                message=None,
                wire=self.wire,
                secrets=self.config.secrets(),
            )
        )

    @property
    def timeout(self) -> float:
        return self.config.timeout if self.config.timeout is not None else DEFAULT_TIMEOUT

    async def send(self, http: HttpRequest, request: LMRequest | None = None) -> HttpResponse:
        """Send; return a 2xx response or raise the classified error."""
        try:
            resp = await get_transport().send(http)
        except TransportError as exc:
            raise self.failure(request, exception=exc) from None
        if not resp.ok:
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

    async def stream_sse(self, http: HttpRequest, request: LMRequest | None = None) -> AsyncIterator[str]:
        """Open a streamed response and yield each Server-Sent Event's ``data`` as soon as it is parsed."""
        sse = SSEDecoder()
        async with self.open_stream(http, request) as resp:
            try:
                async for raw in resp.aiter_bytes():
                    for event in sse.iter_feed(raw):
                        yield event.data
                for event in sse.close():
                    yield event.data
            except TransportError as exc:
                raise self.failure(request, exception=exc) from None

    async def stream_ndjson(self, http: HttpRequest, request: LMRequest | None = None) -> AsyncIterator[bytes]:
        """Open a streamed response and yield each newline-delimited JSON line (undecoded)."""
        lines = NDJSONDecoder()
        async with self.open_stream(http, request) as resp:
            try:
                async for raw in resp.aiter_bytes():
                    for line in lines.feed(raw):
                        yield line
                for line in lines.close():
                    yield line
            except TransportError as exc:
                raise self.failure(request, exception=exc) from None


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
        self._headers = self.build_headers()

    def build_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    def options_for(self, request: LMRequest) -> openai_chat.WireOptions:
        """Wire quirks for this request (override for per-model differences)."""
        return self.wire_options

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        if self.requires_api_key and not self.config.api_key:
            from dsrs.errors import AuthenticationError

            env = " or ".join(self.api_key_env) or "api_key="
            raise AuthenticationError(f"no API key: set {env}", provider=self.name, model=request.model)
        body = openai_chat.encode_body(request, stream=stream, options=self.options_for(request))
        headers = self._headers if not stream else {**self._headers, "accept": "text/event-stream"}
        return HttpRequest("POST", self.url, headers, _json.dumps(body), self.timeout)

    def decode(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        return openai_chat.decode_response(
            resp.status, resp.headers, resp.content, provider=self.name, model=request.model
        )

    async def acomplete(self, request: LMRequest) -> LMResponse:
        resp = await self.send(self.encode(request), request)
        return self.decode(resp, request)

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        decoder = openai_chat.ChatStreamDecoder(provider=self.name, model=request.model)
        async for data in self.stream_sse(self.encode(request, stream=True), request):
            chunk = decoder.feed(data)
            if chunk is not None:
                yield chunk
        yield StreamChunk(response=decoder.finish())

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
