"""The ``ollama`` provider: Ollama's native ``/api/chat`` over the dsrs transport.

Encoding, decoding (NDJSON streams) and error classification are :class:`dsrs_ollama.wire.OllamaCodec`,
run by :class:`dsrs.wire.HttpProvider`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import LMError
from dsrs.transport import HttpRequest, TransportError, get_transport
from dsrs.wire import HttpProvider
from dsrs_ollama import wire

__all__ = ["OllamaProvider", "chat_model", "resolve_host"]


def resolve_host(base_url: str | None = None) -> str:
    """``LM(base_url=...)``, else ``OLLAMA_HOST``, else ``http://localhost:11434``."""
    return wire.parse_host(base_url or os.environ.get("OLLAMA_HOST"))


class OllamaProvider(HttpProvider):
    """Chat with models served by Ollama (``ollama:llama3.2``, ``ollama/llama2``)."""

    wire: ClassVar[str] = wire.WIRE
    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        host = resolve_host(config.base_url)
        super().__init__(
            spec, ProviderConfig(base_url=host, api_key=config.api_key, timeout=config.timeout, options=config.options)
        )
        self.host = host
        self.chat_url = f"{host}/api/chat"
        headers = {"content-type": "application/json"}
        if config.api_key:  # an Ollama behind an authenticating proxy, or ollama.com
            headers["authorization"] = f"Bearer {config.api_key}"
        self.codec = wire.OllamaCodec(secrets=self.set_endpoint(host, headers).secrets)

    def __repr__(self) -> str:
        return f"OllamaProvider(host={self.host!r})"

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Always configured (a local default host); reachable when ``GET /api/tags`` lists a model."""
        try:
            host = resolve_host()
        except LMError as exc:
            return ProbeResult(False, None, None, exc.message)
        t0 = time.perf_counter()
        try:
            resp = await get_transport().send(HttpRequest("GET", f"{host}/api/tags", {}, None, timeout))
        except TransportError as exc:
            return ProbeResult(True, False, None, f"Ollama not reachable at {host}: {type(exc).__name__}")
        latency = (time.perf_counter() - t0) * 1000
        if not resp.ok:
            return ProbeResult(True, False, latency, f"HTTP {resp.status} from {host}/api/tags")
        try:
            data = json.loads(resp.content)
            models = [m for m in data.get("models") or [] if isinstance(m, dict) and m.get("name")]
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
            return ProbeResult(True, False, latency, f"{host}/api/tags did not answer like Ollama")
        if not models:
            return ProbeResult(True, False, latency, f"Ollama at {host} has no models; run `ollama pull llama3.2`")
        model = chat_model(models, spec.default_model)
        if model is None:
            return ProbeResult(True, False, latency, f"Ollama at {host} has only embedding models; pull a chat model")
        return ProbeResult(True, True, latency, f"ok, {len(models)} model(s) at {host}", model)


def _is_embedding(entry: Mapping[str, Any]) -> bool:
    raw = entry.get("details")
    details: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    families = [str(details.get("family") or ""), *(str(f) for f in details.get("families") or ())]
    return "embed" in str(entry["name"]).lower() or any("bert" in f.lower() for f in families)


def chat_model(models: list[dict[str, Any]], preferred: str | None) -> str | None:
    """The model a lane should use: ``preferred`` when pulled, else the first non-embedding model."""
    names = [str(m["name"]) for m in models]
    if preferred is not None:
        for candidate in (preferred, f"{preferred}:latest"):
            if candidate in names:
                return candidate
    for entry in models:
        if not _is_embedding(entry):
            return str(entry["name"])
    return None
