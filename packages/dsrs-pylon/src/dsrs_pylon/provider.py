"""The ``pylon`` provider: swarm (NIP-90 over Nostr), local (delegated) and hybrid modes.

Model strings: ``pylon:swarm[:model]``, ``pylon:local[:model]``, ``pylon:hybrid[:model]``. Options
(set them with :class:`dsrs_pylon.PylonLM`'s builders or as ``LM(..., option=value)``):

==================  ==========================================================================
``relays``          relay URLs (list or comma-separated); default ``PYLON_RELAY_URL``
``budget``          a shared :class:`~dsrs_pylon.Budget` (``budget_msats=`` makes one per LM)
``bid_msats``       most to offer per job (default 1,000 msats, capped by what is left of the budget)
``targets``         provider pubkeys (hex or npub) to direct the job to (``p`` tags)
``discover``        target the providers announced through NIP-89 (kind 31990, ``k`` = 5050)
``encrypt``         encrypt inputs and params to the one target (default: on when exactly one is targeted)
``encryption``      force ``nip44_v2`` or ``nip04`` for encrypted jobs (default: NIP-44 unless the
                    provider announces only NIP-04)
``identity``        a :class:`~dsrs_pylon.Keys`; else ``PYLON_NSEC``/``PYLON_MNEMONIC``/key file/ephemeral
``backend``         local provider (``ollama``, ``gptoss``, any registered name); default: first installed
``local_base_url``  base URL for the local provider
``local_timeout``   hybrid: seconds to give the local backend before falling back (default 5)
``swarm_fallback``  hybrid: fall back to the swarm (default True)
``connect_timeout``, ``publish_timeout``, ``feedback_timeout``, ``payment_timeout``, ``offer_wait``:
                    per-phase limits in seconds inside the LM's ``timeout`` (default 60)
==================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import dsrs
from dsrs import LM, ProbeResult, Provider, ProviderConfig, ProviderSpec
from dsrs.errors import InvalidRequestError, LMError, LMTimeoutError, UnknownModelError
from dsrs.plugins import hooks
from dsrs.types import Cost, LMRequest, LMResponse, LmUsage, StreamChunk
from dsrs_pylon import encryption
from dsrs_pylon.budget import Budget
from dsrs_pylon.keys import InvalidKeyError, Keys, load_keys, npub_to_hex
from dsrs_pylon.swarm import JobOutcome, SwarmSettings, discover_providers, run_job

__all__ = ["LOCAL_BACKENDS", "MODES", "PylonProvider", "parse_model", "relays_from"]

MODES = ("swarm", "local", "hybrid")
#: Local backends tried in order when none is named: (provider name, distribution to install).
LOCAL_BACKENDS: tuple[tuple[str, str], ...] = (("ollama", "dsrs-ollama"), ("gptoss", "dsrs-gptoss"))
DEFAULT_TIMEOUT = 60.0
DEFAULT_LOCAL_TIMEOUT = 5.0
# Options that configure Pylon itself and are not passed to a local backend.
_PYLON_OPTIONS = frozenset(
    {
        "relays", "budget", "budget_msats", "bid_msats", "targets", "discover", "identity", "key_file",
        "backend", "local_base_url", "local_timeout", "swarm_fallback", "connect_timeout", "publish_timeout",
        "feedback_timeout", "payment_timeout", "offer_wait", "params", "local_options", "encrypt",
        "encryption",
    }
)  # fmt: skip


def parse_model(model: str) -> tuple[str, str | None]:
    """``"swarm"`` → ``("swarm", None)``; ``"local:llama2"`` → ``("local", "llama2")``."""
    mode, _, name = model.partition(":")
    mode = mode.strip().lower() or "swarm"
    if mode not in MODES:
        raise InvalidRequestError(
            f"unknown Pylon mode {mode!r} in 'pylon:{model}'; use pylon:swarm, pylon:local[:model] or pylon:hybrid",
            provider="pylon",
            model=model,
        )
    return mode, name.strip() or None


def relays_from(value: Any) -> tuple[str, ...]:
    """Relay URLs from a list, a comma-separated string, or ``PYLON_RELAY_URL`` when ``value`` is empty."""
    if value is None or value == "" or value == ():
        value = os.environ.get("PYLON_RELAY_URL", "")
    items = value.split(",") if isinstance(value, str) else list(value)
    urls = tuple(dict.fromkeys(str(u).strip() for u in items if str(u).strip()))
    for url in urls:
        if not url.startswith(("ws://", "wss://")):
            raise InvalidRequestError(f"relay URL must start with ws:// or wss://, got {url!r}", provider="pylon")
    return urls


def _float(options: Any, name: str, default: float) -> float:
    value = options.get(name)
    if value is None:
        return default
    try:
        number = float(value.total_seconds() if hasattr(value, "total_seconds") else value)
    except (TypeError, ValueError):
        raise InvalidRequestError(
            f"option {name} must be a number of seconds, got {value!r}", provider="pylon"
        ) from None
    if number <= 0:
        raise InvalidRequestError(f"option {name} must be positive, got {value!r}", provider="pylon")
    return number


class PylonProvider(Provider):
    """Runs each request as a NIP-90 job, on a local backend, or local-first with swarm fallback."""

    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        options = config.options
        budget = options.get("budget")
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidRequestError("option budget must be a dsrs_pylon.Budget", provider="pylon")
        if budget is None and options.get("budget_msats") is not None:
            budget = Budget(int(options["budget_msats"]))
        self.budget: Budget | None = budget
        self._keys: Keys | None = None
        self._local: dict[tuple[str, str | None, str | None], LM] = {}

    # --- identity ---------------------------------------------------------------------------

    @property
    def keys(self) -> Keys:
        if self._keys is None:
            identity = self.config.options.get("identity")
            try:
                self._keys = load_keys(identity, key_file=self.config.options.get("key_file"))
            except InvalidKeyError as exc:
                raise InvalidRequestError(f"Pylon identity: {exc}", provider="pylon") from None
        return self._keys

    def __repr__(self) -> str:
        return f"PylonProvider(relays={relays_from(self.config.options.get('relays'))!r}, budget={self.budget!r})"

    # --- requests ---------------------------------------------------------------------------

    async def acomplete(self, request: LMRequest) -> LMResponse:
        mode, model = parse_model(request.model)
        if mode == "swarm":
            return await self._swarm(request, model, {"pylon_mode": "swarm", "pylon_path": "swarm"})
        if mode == "local":
            return await self._local_call(request, model, {"pylon_mode": "local", "pylon_path": "local"})
        return await self._hybrid(request, model)

    async def _hybrid(self, request: LMRequest, model: str | None) -> LMResponse:
        options = self.config.options
        local_timeout = _float(options, "local_timeout", DEFAULT_LOCAL_TIMEOUT)
        fallback = bool(options.get("swarm_fallback", True))
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(
                self._local_call(request, model, {"pylon_mode": "hybrid", "pylon_path": "local"}), local_timeout
            )
        except (LMError, asyncio.TimeoutError) as exc:
            if isinstance(exc, asyncio.TimeoutError):
                reason = f"local backend did not answer within {local_timeout:g}s"
                error: LMError = LMTimeoutError(reason, provider="pylon", model=request.model, code="local_timeout")
            else:
                error, reason = exc, f"{type(exc).__name__}: {exc}"
            if not fallback:
                raise error from None
        detail = {
            "pylon_mode": "hybrid",
            "pylon_path": "swarm",
            "local_error": reason[:300],
            "local_elapsed_s": round(time.perf_counter() - t0, 4),
        }
        return await self._swarm(request, model, detail)

    # --- local ------------------------------------------------------------------------------

    def _local_lm(self, model: str | None, timeout: float | None) -> LM:
        options = self.config.options
        backend = options.get("backend")
        installed = {spec.name for spec in dsrs.providers()}
        if backend is None:
            for candidate, _dist in LOCAL_BACKENDS:
                if candidate in installed:
                    backend = candidate
                    break
            else:
                raise UnknownModelError(
                    "Pylon local mode needs a local provider and none is installed. Install one: "
                    + " or ".join(f"pip install {dist} ({name})" for name, dist in LOCAL_BACKENDS)
                    + ", or name any installed provider with .with_backend(name).",
                    model="pylon:local",
                    installed=sorted(installed),
                    install_hint=LOCAL_BACKENDS[0][1],
                )
        backend = str(backend)
        if backend == "pylon":
            raise InvalidRequestError("Pylon local mode cannot use 'pylon' itself as its backend", provider="pylon")
        spec = dsrs.provider_spec(backend)  # UnknownModelError with an install hint when missing
        name = model or spec.default_model
        if not name:
            raise InvalidRequestError(
                f"name a model for the {backend} backend: PylonLM.new_local().with_model('...') or 'pylon:local:<model>'",
                provider="pylon",
            )
        base_url = options.get("local_base_url")
        key = (backend, name, base_url)
        lm = self._local.get(key)
        if lm is None:
            lm = LM(f"{backend}:{name}", base_url=base_url, timeout=timeout, options=options.get("local_options"))
            self._local[key] = lm
        return lm

    def _local_request(self, request: LMRequest, lm: LM) -> LMRequest:
        return replace(
            request,
            provider=lm.resolved.spec.name,
            model=lm.resolved.model,
            options={**{k: v for k, v in request.options.items() if k not in _PYLON_OPTIONS}, **lm.options},
            base_url=lm.base_url,
        )

    def _local_response(self, request: LMRequest, lm: LM, response: LMResponse, detail: dict[str, Any]) -> LMResponse:
        usage = response.usage
        if usage.cost_msats is None and usage.cost_usd is None:
            # Local inference spends no money: price it by the backend's table if it has one, else 0.
            usage = usage.with_cost(hooks().cost(lm.canonical_model, usage) or Cost(usd=0.0, msats=0))
        usage = replace(usage, detail={**usage.detail, **detail, "local_backend": lm.canonical_model})
        return replace(response, usage=usage, provider="pylon", model=request.model)

    async def _local_call(self, request: LMRequest, model: str | None, detail: dict[str, Any]) -> LMResponse:
        lm = self._local_lm(model, self.config.timeout)
        response = await lm.provider().acomplete(self._local_request(request, lm))
        return self._local_response(request, lm, response, detail)

    async def _local_stream(self, request: LMRequest, model: str | None) -> AsyncIterator[StreamChunk]:
        """The local backend's own stream, its last chunk's response relabelled as Pylon's."""
        lm = self._local_lm(model, self.config.timeout)
        detail = {"pylon_mode": "local", "pylon_path": "local"}
        async for chunk in lm.provider().astream(self._local_request(request, lm)):
            if chunk.response is not None:
                chunk = replace(chunk, response=self._local_response(request, lm, chunk.response, detail))
            yield chunk

    # --- swarm ------------------------------------------------------------------------------

    async def settings(self, request: LMRequest) -> SwarmSettings:
        options = self.config.options
        relays = relays_from(options.get("relays"))
        if not relays:
            raise InvalidRequestError(
                "no Nostr relay configured: PylonLM.new_swarm('wss://...') or set PYLON_RELAY_URL",
                provider="pylon",
                model=request.model,
            )
        try:
            targets = tuple(npub_to_hex(t) for t in _as_list(options.get("targets")))
        except InvalidKeyError as exc:
            raise InvalidRequestError(f"bad target: {exc}", provider="pylon") from None
        timeout = float(self.config.timeout or DEFAULT_TIMEOUT)
        if not targets and options.get("discover"):
            handlers = await discover_providers(relays, self.keys, timeout=_float(options, "connect_timeout", 5.0))
            targets = tuple(h.pubkey for h in handlers)
        bid = options.get("bid_msats")
        encrypt = options.get("encrypt")
        if encrypt is not None and not isinstance(encrypt, bool):
            raise InvalidRequestError(f"option encrypt must be True or False, got {encrypt!r}", provider="pylon")
        scheme = options.get("encryption")
        if scheme is not None and scheme not in encryption.SCHEMES:
            raise InvalidRequestError(
                f"option encryption must be one of {list(encryption.SCHEMES)}, got {scheme!r}", provider="pylon"
            )
        if encrypt and len(targets) != 1:
            raise InvalidRequestError(
                f"an encrypted job goes to exactly one provider, got {len(targets)} targets: "
                "use .with_targets(pubkey), or .with_encryption(False)",
                provider="pylon",
                model=request.model,
            )
        return SwarmSettings(
            relays=relays,
            keys=self.keys,
            budget=self.budget,
            bid_msats=int(bid) if bid is not None else None,
            targets=targets,
            timeout=timeout,
            connect_timeout=_float(options, "connect_timeout", 5.0),
            publish_timeout=_float(options, "publish_timeout", 5.0),
            feedback_timeout=_float(options, "feedback_timeout", min(20.0, timeout)),
            payment_timeout=_float(options, "payment_timeout", 30.0),
            offer_wait=_float(options, "offer_wait", 2.0),
            model_label=request.model,
            encrypt=len(targets) == 1 if encrypt is None else encrypt,
            encryption=scheme,
        )

    async def _swarm(
        self,
        request: LMRequest,
        model: str | None,
        detail: dict[str, Any],
        on_partial: Callable[[str], None] | None = None,
    ) -> LMResponse:
        settings = await self.settings(request)
        params = request.options.get("params")
        outcome = await run_job(
            settings,
            request.messages,
            model=model,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            params=params if isinstance(params, dict) else None,
            on_partial=on_partial,
        )
        return _swarm_response(request, outcome, detail)

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        """Swarm jobs stream the provider's ``partial`` feedback as deltas; the last chunk carries the
        verified 6050 result (text and cost). Its text is whatever the deltas lack of the result; when
        the partials were not a prefix of the result, ``response.text`` is the one to trust.
        Local calls stream the local backend; hybrid calls answer in one chunk."""
        mode, model = parse_model(request.model)
        if mode == "local":
            async for chunk in self._local_stream(request, model):
                yield chunk
            return
        if mode != "swarm":
            response = await self.acomplete(request)
            yield StreamChunk(text=response.text, response=response)
            return
        deltas: asyncio.Queue[str] = asyncio.Queue()
        job = asyncio.ensure_future(
            self._swarm(request, model, {"pylon_mode": "swarm", "pylon_path": "swarm"}, deltas.put_nowait)
        )
        streamed = ""
        try:
            while not job.done() or not deltas.empty():
                if deltas.empty():
                    getter = asyncio.ensure_future(deltas.get())
                    await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        continue
                    delta = getter.result()
                else:
                    delta = deltas.get_nowait()
                streamed += delta
                yield StreamChunk(text=delta)
            response = job.result()
        finally:
            if not job.done():
                job.cancel()
                with contextlib.suppress(BaseException):
                    await job
        rest = response.text[len(streamed) :] if response.text.startswith(streamed) else ""
        yield StreamChunk(text=rest, response=response)

    async def aclose(self) -> None:
        for lm in self._local.values():
            await lm.aclose()

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured when ``PYLON_RELAY_URL`` is set; reachable when one of its relays accepts a connection."""
        try:
            relays = relays_from(None)
        except InvalidRequestError as exc:
            return ProbeResult(False, None, None, str(exc))
        if not relays:
            return ProbeResult(False, None, None, "set PYLON_RELAY_URL to use the Pylon swarm")
        from dsrs_pylon.relay import RelayPool

        t0 = time.perf_counter()
        pool = RelayPool(relays, Keys.generate(), lambda *_: None)
        try:
            await pool.connect(timeout)
        finally:
            await pool.close()
        ms = (time.perf_counter() - t0) * 1000
        if pool.connections:
            return ProbeResult(True, True, ms, f"{len(pool.connections)}/{len(relays)} relays reachable", "swarm")
        return ProbeResult(True, False, ms, "no relay reachable: " + "; ".join(pool.failures.values()))


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [v for v in (x.strip() for x in value.split(",")) if v]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise InvalidRequestError(f"targets must be a list of pubkeys, got {type(value).__name__}", provider="pylon")


def _swarm_response(request: LMRequest, outcome: JobOutcome, detail: dict[str, Any]) -> LMResponse:
    paid = outcome.paid_msats + outcome.fee_msats
    usage = LmUsage.from_tokens(
        outcome.prompt_tokens or 0,
        outcome.completion_tokens or 0,
        detail={
            **detail,
            "job_id": outcome.job_id,
            "provider_pubkey": outcome.provider_pubkey,
            "paid_msats": outcome.paid_msats,
            "fee_msats": outcome.fee_msats,
            "relays": outcome.relays_accepted,
            "tokens_reported": outcome.prompt_tokens is not None,
            "encryption": outcome.encryption,
            "proof_valid": outcome.proof_valid,
        },
    ).with_cost(Cost(msats=paid))
    raw = {
        "job_id": outcome.job_id,
        "provider": outcome.provider_pubkey,
        "amount_msats": outcome.paid_msats,
        "fee_msats": outcome.fee_msats,
        "bolt11": outcome.bolt11,
        "statuses": [s for s, _ in outcome.statuses],
        "rejected_events": outcome.rejected_events,
    }
    return LMResponse(
        text=outcome.text, usage=usage, finish_reason="stop", raw_usage=raw, provider="pylon", model=request.model
    )
