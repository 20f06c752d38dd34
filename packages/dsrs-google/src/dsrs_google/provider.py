"""The ``google`` provider: the Gemini API over the dsrs transport (no google-genai SDK).

Encoding, decoding and error classification are :class:`dsrs_google.wire.GeminiCodec`; thought
signatures and Gemini's function-call ids travel on the answer's ``provider_state`` (and so with
``LMResponse.message()`` into the next turn), not in a process-wide store.
"""

from __future__ import annotations

import json
import time
from typing import ClassVar

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError
from dsrs.transport import HttpRequest, TransportError, get_transport
from dsrs.types import LMRequest
from dsrs.wire import HttpProvider, env_first
from dsrs_google import wire

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "GeminiProvider", "resolve_base_url"]

#: Where the key comes from: ``GOOGLE_API_KEY`` (the seed's name) first, then ``GEMINI_API_KEY``.
API_KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
BASE_URL_ENV = ("GEMINI_BASE_URL",)


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
        headers = {"content-type": "application/json"}
        if key:
            headers["x-goog-api-key"] = key
        self.codec = wire.GeminiCodec(secrets=self.set_endpoint(base, headers).secrets)

    def __repr__(self) -> str:
        return f"GeminiProvider(base_url={self.base_url!r})"

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        if not self.config.api_key:
            raise AuthenticationError(
                "no Gemini API key: set GOOGLE_API_KEY or GEMINI_API_KEY, or pass LM(..., api_key=...)",
                provider=self.name,
                model=request.model,
            )
        return super().encode(request, stream=stream)

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
