"""The ``acme`` provider: the Acme chat wire over the dsrs transport (imported on first use)."""

from __future__ import annotations

import time

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError, LMError
from dsrs.transport import HttpRequest, TransportError, get_transport
from dsrs.types import LMRequest
from dsrs.wire import HttpProvider, env_first
from dsrs_acme_example.wire import WIRE, AcmeCodec

API_KEY_ENV = ("ACME_API_KEY",)
BASE_URL_ENV = ("ACME_BASE_URL",)
DEFAULT_BASE_URL = "https://api.acme.example"


class AcmeProvider(HttpProvider):
    """Acme's chat models (``acme:acme-large``, or a bare ``acme-large``)."""

    wire = WIRE
    supports_streaming = True
    supports_response_format = True
    supports_tools = True

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        # LM(base_url=..., api_key=...) wins over the environment; the final config is what
        # self.config holds (and self.timeout reads), so build it before calling super().
        base_url = config.base_url or env_first(BASE_URL_ENV) or DEFAULT_BASE_URL
        api_key = config.api_key or env_first(API_KEY_ENV)
        super().__init__(
            spec, ProviderConfig(base_url=base_url, api_key=api_key, timeout=config.timeout, options=config.options)
        )
        self.codec = AcmeCodec(self._stream_failure)
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        # Every credential header given here is a secret: redacted from errors, probes and logs.
        self.set_endpoint(base_url, headers)

    def __repr__(self) -> str:
        return f"AcmeProvider(base_url={self.endpoint.base_url!r})"

    def _stream_failure(self, request: LMRequest, code: str, message: str) -> LMError:
        return self.failure(request, code=code, message=message)

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        if not self.config.api_key:  # fail before sending, naming what to set
            raise AuthenticationError(
                "no Acme API key: set ACME_API_KEY or pass LM(..., api_key=...)",
                provider=self.name,
                model=request.model,
            )
        return super().encode(request, stream=stream)

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured when ``ACME_API_KEY`` is set; reachable when ``GET /v2/models`` accepts it.

        An *async* classmethod: auto-detection awaits it. It never raises and never reports
        server text (which may echo the key).
        """
        key = env_first(API_KEY_ENV)
        if not key:
            return ProbeResult(False, None, None, "set ACME_API_KEY")
        base = (env_first(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        request = HttpRequest("GET", base + "/v2/models", {"authorization": f"Bearer {key}"}, None, timeout)
        t0 = time.perf_counter()
        try:
            resp = await get_transport().send(request)
        except TransportError as exc:
            return ProbeResult(True, False, None, f"unreachable: {type(exc).__name__}")
        latency = (time.perf_counter() - t0) * 1000
        if not resp.ok:
            what = "key rejected" if resp.status in (401, 403) else "API unavailable"
            return ProbeResult(True, False, latency, f"{what} (HTTP {resp.status})")
        return ProbeResult(True, True, latency, "ok")
