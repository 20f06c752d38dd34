"""The ``google`` provider: the Gemini API over the dsrs transport (no google-genai SDK)."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import ClassVar

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError, InvalidRequestError
from dsrs.transport import HttpRequest, TransportError, get_transport
from dsrs.types import LMRequest, LMResponse, StreamChunk
from dsrs.wire import HttpProvider, env_first
from dsrs_google import wire

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "SIGNATURES", "GeminiProvider", "SignatureStore", "resolve_base_url"]

#: Where the key comes from: ``GOOGLE_API_KEY`` (the seed's name) first, then ``GEMINI_API_KEY``.
API_KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
BASE_URL_ENV = ("GEMINI_BASE_URL",)
_MAX_SIGNATURES = 4096


class SignatureStore:
    """Thought signatures of the function calls Gemini returned, by tool-call id (bounded, thread-safe).

    Thinking models sign their function calls and want the signature back with the call in the
    next turn; :class:`~dsrs.ToolCall` has no field for it, so the process remembers it here. It
    is process-wide because every ``with_*`` copy of an LM gets a new provider instance, and the
    next turn is often sent through such a copy.
    """

    def __init__(self, limit: int = _MAX_SIGNATURES) -> None:
        self._limit = limit
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, signatures: Mapping[str, str]) -> None:
        with self._lock:
            for call_id, signature in signatures.items():
                self._items[call_id] = signature
                self._items.move_to_end(call_id)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def lookup(self, call_ids: Iterable[str]) -> dict[str, str]:
        with self._lock:
            return {i: self._items[i] for i in call_ids if i in self._items}

    def __len__(self) -> int:
        return len(self._items)


SIGNATURES = SignatureStore()


def resolve_base_url(base_url: str | None = None) -> str:
    """``LM(base_url=...)``, else ``GEMINI_BASE_URL``, else the public v1beta endpoint."""
    return wire.normalize_base_url(base_url or env_first(BASE_URL_ENV) or wire.DEFAULT_BASE_URL)


class GeminiProvider(HttpProvider):
    """Gemini models (``gemini-2.5-flash``, ``google:gemini-2.5-pro``, ``gemini/gemini-pro``).

    The key travels in the ``x-goog-api-key`` header, never in the URL (URLs end up in logs).
    """

    wire: ClassVar[str] = wire.WIRE
    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        base = resolve_base_url(config.base_url)
        key = config.api_key or env_first(API_KEY_ENV)
        super().__init__(
            spec, ProviderConfig(base_url=base, api_key=key, timeout=config.timeout, options=config.options)
        )
        self.base_url = base

    def __repr__(self) -> str:
        return f"GeminiProvider(base_url={self.base_url!r})"

    def _headers(self, request: LMRequest, *, stream: bool) -> dict[str, str]:
        if not self.config.api_key:
            raise AuthenticationError(
                "no Gemini API key: set GOOGLE_API_KEY or GEMINI_API_KEY, or pass LM(..., api_key=...)",
                provider=self.name,
                model=request.model,
            )
        return {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "x-goog-api-key": self.config.api_key,
        }

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        headers = self._headers(request, stream=stream)
        call_ids = [tc.id for m in request.messages for tc in m.tool_calls]
        body = wire.encode_body(request, signatures=SIGNATURES.lookup(call_ids) if call_ids else None)
        url = wire.generate_url(self.base_url, request.model, stream=stream)
        try:
            content = json.dumps(body, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(
                f"the request is not JSON-serializable: {exc}", provider=self.name, model=request.model
            ) from None
        return HttpRequest("POST", url, headers, content, self.timeout)

    async def acomplete(self, request: LMRequest) -> LMResponse:
        resp = await self.send(self.encode(request), request)
        decoded = wire.decode_response(resp.status, resp.content, model=request.model)
        SIGNATURES.remember(decoded.signatures)
        return decoded.response

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        decoder = wire.GeminiStreamDecoder(model=request.model)
        async for data in self.stream_sse(self.encode(request, stream=True), request):
            chunk = decoder.feed(data)
            if chunk is not None:
                yield chunk
        response = decoder.finish()
        SIGNATURES.remember(decoder.signatures)
        yield StreamChunk(response=response)

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured when a key is set; reachable when a short ``GET models`` accepts it."""
        key = env_first(API_KEY_ENV)
        if not key:
            return ProbeResult(False, None, None, "set GOOGLE_API_KEY or GEMINI_API_KEY")
        base = resolve_base_url()
        t0 = time.perf_counter()
        try:
            resp = await get_transport().send(
                HttpRequest("GET", wire.models_url(base), {"x-goog-api-key": key}, None, timeout)
            )
        except TransportError as exc:
            return ProbeResult(True, False, None, f"unreachable: {type(exc).__name__}")
        latency = (time.perf_counter() - t0) * 1000
        if not resp.ok:
            err = wire.error_object(resp.content) or {}
            status = err.get("status") or f"HTTP {resp.status}"
            return ProbeResult(True, False, latency, f"key rejected or API unavailable ({status})")
        try:
            data = json.loads(resp.content)
            if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
                raise ValueError("no models list")
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return ProbeResult(True, False, latency, "GET models did not answer like the Gemini API")
        # No model is reported: the list starts with whatever Google sorts first (embedding models
        # included), so a lane built from auto_detect uses the spec's default chat model.
        return ProbeResult(True, True, latency, "ok")
