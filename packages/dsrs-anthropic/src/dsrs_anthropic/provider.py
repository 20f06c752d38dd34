"""The ``anthropic`` provider: Claude through the Messages API over the dsrs transport.

The key travels in ``x-api-key`` (never ``Authorization``) with ``anthropic-version``
(https://docs.anthropic.com/en/api/overview#authentication); it is a secret the provider knows,
so it is redacted from every error, probe detail and log, wherever it came from.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError, LMError, ResponseParseError, redact
from dsrs.transport import HttpRequest, HttpResponse, TransportError, get_transport
from dsrs.types import LMRequest, LMResponse, StreamChunk
from dsrs.wire import HttpProvider, env_first
from dsrs_anthropic import failures
from dsrs_anthropic.codec import AnthropicCodec
from dsrs_anthropic.request import API_VERSION

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "AnthropicProvider", "list_models", "models_url"]

API_KEY_ENV = ("ANTHROPIC_API_KEY",)
BASE_URL_ENV = ("ANTHROPIC_BASE_URL",)
DEFAULT_BASE_URL = "https://api.anthropic.com"
#: A models list longer than this is cut: a hostile server must not flood memory or a table.
MAX_MODELS = 5000


def resolve_base_url(base_url: str | None = None) -> str:
    """``LM(base_url=...)``, else ``ANTHROPIC_BASE_URL``, else the public API."""
    base = (base_url or env_first(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    return base.removesuffix("/v1")


def models_url(base_url: str) -> str:
    """``GET {base}/v1/models`` (https://docs.anthropic.com/en/api/models-list)."""
    return resolve_base_url(base_url) + "/v1/models"


def auth_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": API_VERSION}


class AnthropicProvider(HttpProvider):
    """Claude models (``claude-sonnet-4-5``, ``anthropic:claude-opus-4-1``, ``anthropic/claude-haiku-4-5``)."""

    wire: ClassVar[str] = failures.WIRE
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
        self.codec = AnthropicCodec(self._protocol_failure)
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        if key:
            headers["x-api-key"] = key
        self.set_endpoint(base, headers)

    def __repr__(self) -> str:
        return f"AnthropicProvider(base_url={self.base_url!r})"

    def _protocol_failure(self, request: LMRequest, code: str, message: str, body: bytes) -> LMError:
        return self.failure(request, code=code, message=message, body=body)

    def _require_key(self, request: LMRequest) -> None:
        if not self.config.api_key:
            raise AuthenticationError(
                "no Anthropic API key: set ANTHROPIC_API_KEY or pass LM(..., api_key=...)",
                provider=self.name,
                model=request.model,
            )

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        self._require_key(request)
        return super().encode(request, stream=stream)

    def _scrub(self, err: LMError) -> LMError:
        # The sans-IO codec does not know this provider's secrets: an error it raised about a 2xx
        # body (a field's value quoted in the message, the body kept) may echo the key.
        secrets = self.secrets()
        err.message = redact(err.message, secrets) or ""
        err.body = redact(err.body, secrets)
        err.args = (err.message,)
        return err

    def decode(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        try:
            return super().decode(resp, request)
        except LMError as err:
            raise self._scrub(err) from None

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        try:
            async for chunk in super().astream(request):
                yield chunk
        except LMError as err:
            raise self._scrub(err) from None

    async def list_models(self) -> list[str]:
        """The model ids this key may use, newest first (``GET /v1/models``, every page, at most
        :data:`MAX_MODELS`)."""
        ids: list[str] = []
        after: str | None = None
        while len(ids) < MAX_MODELS:
            url = models_url(self.base_url) + "?limit=1000" + (f"&after_id={quote(after)}" if after else "")
            resp = await self.send(HttpRequest("GET", url, dict(self.endpoint.headers), None, self.timeout))
            page = _models_page(resp.content)
            if page is None:
                raise ResponseParseError(
                    "GET /v1/models did not answer like the Anthropic API", provider=self.name, status=resp.status
                )
            batch, more = page
            ids += batch
            if not more or not batch or batch[-1] == after:
                break
            after = batch[-1]
        return ids[:MAX_MODELS]

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured when ``ANTHROPIC_API_KEY`` is set; reachable when ``GET /v1/models`` accepts it."""
        key = env_first(API_KEY_ENV)
        if not key:
            return ProbeResult(False, None, None, "set ANTHROPIC_API_KEY")
        base = resolve_base_url()
        t0 = time.perf_counter()
        try:
            url = models_url(base) + "?limit=1"  # one model is enough to know the key works
            resp = await get_transport().send(HttpRequest("GET", url, auth_headers(key), None, timeout))
        except TransportError as exc:
            return ProbeResult(True, False, None, f"unreachable: {type(exc).__name__}")
        latency = (time.perf_counter() - t0) * 1000
        if not resp.ok:
            err = failures.error_object(resp.content) or {}
            # Only a documented type is shown: an unknown one is server text (it may echo the key).
            etype = err.get("type") if err.get("type") in failures.ERROR_TYPES else None
            what = "key rejected" if resp.status in (401, 403) else "API unavailable"
            return ProbeResult(True, False, latency, f"{what} (HTTP {resp.status}{', ' + etype if etype else ''})")
        if _models_page(resp.content) is None:
            return ProbeResult(True, False, latency, "GET /v1/models did not answer like the Anthropic API")
        # The list is newest first and includes every family: the lane uses the spec's default model.
        return ProbeResult(True, True, latency, "ok")


def _models_page(body: bytes) -> tuple[list[str], bool] | None:
    """The ids of a models-list page (``{"data": [{"type": "model", "id": ...}], "has_more": ...}``)
    and whether more follow, or ``None`` when the body is not one."""
    try:
        data: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    ids = [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str) and 0 < len(i["id"]) <= 200]
    return ids[:MAX_MODELS], data.get("has_more") is True


async def list_models(api_key: str | None = None, base_url: str | None = None, timeout: float = 10.0) -> list[str]:
    """Model ids from ``GET /v1/models`` (key: ``api_key`` or ``ANTHROPIC_API_KEY``); typed errors on failure."""
    import dsrs

    lm = dsrs.LM("anthropic:claude-sonnet-4-5", api_key=api_key, base_url=base_url, timeout=timeout)
    provider = lm.provider()
    assert isinstance(provider, AnthropicProvider)
    if not provider.config.api_key:
        raise AuthenticationError("no Anthropic API key: set ANTHROPIC_API_KEY or pass api_key=", provider="anthropic")
    return await provider.list_models()
