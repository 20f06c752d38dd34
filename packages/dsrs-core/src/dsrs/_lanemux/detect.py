"""``LaneMux.auto_detect``: probe every registered provider concurrently and build lanes.

A provider becomes a lane (named after it, with its tier) when its probe says it is configured and
not unreachable; probes that raise or take longer than the timeout count as unreachable. The whole
detection takes about one timeout. :class:`ProbeReport` says what was found about each provider.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dsrs import errors
from dsrs._provider import ProbeResult, ProviderSpec, Tier

if TYPE_CHECKING:
    from dsrs._lanemux.mux import LaneMux

__all__ = ["ProbeReport", "detect_lanes", "probe"]


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What ``auto_detect`` found about one provider."""

    provider: str
    tier: Tier
    distribution: str | None
    result: ProbeResult | None
    error: str | None
    elapsed_ms: float
    lane: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"unreachable: {self.error}"
        r = self.result
        assert r is not None
        if not r.configured:
            return f"not configured: {r.detail}"
        if r.reachable is False:
            return f"configured, not reachable: {r.detail}"
        where = f"lane {self.lane!r}" if self.lane else "no lane"
        latency = f", {r.latency_ms:.0f} ms" if r.latency_ms is not None else ""
        checked = "" if r.reachable else " (reachability not checked)"
        return f"{where}: {r.detail}{checked}{latency}"


async def probe(spec: ProviderSpec, timeout: float, secrets: tuple[str, ...] = ()) -> ProbeReport:
    """One provider's probe, bounded by ``timeout``; its detail is redacted of known secrets."""
    t0 = time.perf_counter()
    result: ProbeResult | None = None
    error: str | None = None
    try:
        provider_cls = spec.load()
        pending = provider_cls.probe(spec, timeout)
        if not inspect.isawaitable(pending):
            got = type(pending).__name__
            raise TypeError(f"{provider_cls.__name__}.probe must be an async classmethod (it returned a {got})")
        result = await asyncio.wait_for(pending, timeout)
        if not isinstance(result, ProbeResult):
            error = f"probe returned {type(result).__name__}, not a ProbeResult (is probe an async classmethod?)"
            result = None
        elif result.detail:
            result = replace(result, detail=errors.redact(result.detail, secrets) or "")
    except asyncio.TimeoutError:
        error = f"no answer within {timeout:g}s"
    except Exception as exc:
        error = errors.redact(f"probe failed: {type(exc).__name__}: {exc}", secrets) or "probe failed"
    return ProbeReport(spec.name, spec.tier, spec.distribution, result, error, (time.perf_counter() - t0) * 1000)


def _env_secrets(specs: Iterable[ProviderSpec]) -> tuple[str, ...]:
    import os

    return tuple(v for s in specs for name in s.env_vars if (v := os.environ.get(name)) and len(v) >= 8)


async def detect_lanes(mux: LaneMux, timeout: float, include: Iterable[str] | None, exclude: Iterable[str]) -> LaneMux:
    """Probe the providers and add a lane to ``mux`` for each usable one, in tier order."""
    from dsrs._lm import LM
    from dsrs._registry import providers

    wanted = set(include) if include is not None else None
    skipped = set(exclude)
    specs = [s for s in providers() if (wanted is None or s.name in wanted) and s.name not in skipped]
    secrets = _env_secrets(specs)
    t0 = time.perf_counter()
    reports = await asyncio.gather(*(probe(spec, timeout, secrets) for spec in specs))
    mux.probe_timeout = timeout
    final: list[ProbeReport] = []
    for spec, report in zip(specs, reports, strict=True):
        r = report.result
        if report.error is None and r is not None and r.configured and r.reachable is not False and r.lane:
            model = r.model or spec.default_model
            if model is None:
                report = replace(report, result=replace(r, detail=f"{r.detail}; no model to use"))
            else:
                try:
                    mux.add_lane(spec.name, LM(f"{spec.name}:{model}"), tier=spec.tier)
                    report = replace(report, lane=spec.name)
                except (errors.LMError, ValueError) as exc:
                    report = replace(report, error=f"cannot build a lane: {exc}")
        final.append(report)
    mux.probes = final
    mux.detect_ms = (time.perf_counter() - t0) * 1000
    return mux
