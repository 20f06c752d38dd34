"""Prices from pydantic's ``genai-prices`` data: the fallback for models no package table lists.

Used only offline: the snapshot bundled with the installed ``genai-prices`` (the ``dsrs-core[prices]``
extra). dsrs never calls ``genai_prices.UpdatePrices`` or anything else that downloads; a newer price
list comes with a newer package. The packages' own tables stay the override: this fallback is
registered with ``trylast=True`` on ``dsrs_cost``, so it answers only when every table said ``None``.

Tokens map the way both sides count them: dsrs's ``prompt_tokens`` *includes* cached reads and
writes, as genai-prices' ``input_tokens`` does, so cache reads and writes are billed at their own
rates and tiered prices (e.g. above 200k input tokens) follow the prompt size.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Literal

from dsrs._usage import Cost, LmUsage, usd_to_msats

__all__ = ["GENAI_PRICES_PROVIDERS", "PriceSource", "genai_prices_available", "genai_prices_cost", "price_source"]

#: dsrs provider name -> genai-prices provider id. Providers not listed (local servers, the fake
#: provider, any OpenAI-compatible endpoint, the Pylon swarm) have no fallback price: what a model
#: costs there depends on who runs it, so guessing from the model name alone would be wrong.
GENAI_PRICES_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "openai-responses": "openai",
    "codex": "openai",
    "google": "google",
    "anthropic": "anthropic",
    "groq": "groq",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
    "together": "together",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "mistral": "mistral",
}

PriceSource = Literal["package table", "genai-prices"]

# Usage used to ask "is this model priced at all?" (any table answers a known model for it).
_PROBE_USAGE = LmUsage.from_tokens(1000, 1000)


@lru_cache(maxsize=1)
def _genai_prices() -> Any:
    """The ``genai_prices`` module, or ``None`` when the ``prices`` extra is not installed."""
    try:
        import genai_prices
    except ImportError:
        return None
    return genai_prices


def genai_prices_available() -> bool:
    """Whether the ``genai-prices`` package (the ``dsrs-core[prices]`` extra) is installed."""
    return _genai_prices() is not None


@lru_cache(maxsize=4096)
def _known(provider_id: str, model: str) -> bool:
    """Whether genai-prices lists ``model`` at ``provider_id`` (misses are remembered too: genai-prices
    scans every model of the provider for each miss, and an unknown model may be called often)."""
    module = _genai_prices()
    if module is None:
        return False
    try:
        module.data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return False
    return True


def _exact_usd(provider_id: str, model: str, counts: tuple[int, int, int, int]) -> float | None:
    """genai-prices' own calculation (about 250 µs: it decomposes usage through its unit registry)."""
    module = _genai_prices()
    prompt, cache_read, cache_write, completion = counts
    priced = module.Usage(
        input_tokens=prompt,
        cache_read_tokens=cache_read or None,
        cache_write_tokens=cache_write or None,
        output_tokens=completion,
    )
    try:
        calculation = module.calc_price(priced, model, provider_id=provider_id)
    except (LookupError, ValueError):
        return None
    return float(calculation.total_price)


@dataclass(frozen=True, slots=True)
class _LinearPrice:
    """USD per token of each kind plus a fixed part per call, read off genai-prices for one model."""

    fixed: float
    uncached_input: float
    cache_read: float
    cache_write: float
    output: float

    def usd(self, counts: tuple[int, int, int, int]) -> float:
        prompt, cache_read, cache_write, completion = counts
        return (
            self.fixed
            + (prompt - cache_read - cache_write) * self.uncached_input
            + cache_read * self.cache_read
            + cache_write * self.cache_write
            + completion * self.output
        )


_PROBE_TOKENS = 1_000_000
# Linear readings of a model's price, per prompt-size segment: ((exclusive lower bound, price), ...),
# or None when some segment is not linear; with the hour they were read in.
_linear: dict[tuple[str, str], tuple[int, tuple[tuple[int, _LinearPrice], ...] | None]] = {}


def _thresholds(provider_id: str, model: str) -> list[int]:
    """Prompt sizes above which a tier's prices apply (genai-prices' "cliff" tiers), ascending."""
    module = _genai_prices()
    _, info = module.data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    prices = info.get_prices(datetime.now(tz=timezone.utc))
    starts = {
        int(tier.start)
        for value in vars(prices).values()
        if isinstance(value, module.types.TieredPrices)
        for tier in value.tiers
    }
    return sorted(starts)


def _read_segment(provider_id: str, model: str, lo: int, hi: int | None) -> _LinearPrice | None:
    """The price for prompts of ``lo < prompt <= hi`` tokens as a linear function, from six of
    genai-prices' own calculations, checked against a seventh; ``None`` if it is not linear there."""
    p0 = lo + 1
    p1 = p0 + _PROBE_TOKENS if hi is None else min(hi, p0 + _PROBE_TOKENS)
    if p1 <= p0:
        return None
    n = _PROBE_TOKENS
    probes = [(p0, 0, 0, 0), (p1, 0, 0, 0), (p1, p1, 0, 0), (p1, 0, p1, 0), (p1, 0, 0, n)]
    found = [_exact_usd(provider_id, model, counts) for counts in probes]
    values = [v for v in found if v is not None]
    if len(values) != len(probes):
        return None
    at_p0, at_p1, all_read, all_written, with_output = values
    uncached = (at_p1 - at_p0) / (p1 - p0)
    fixed = at_p0 - p0 * uncached
    fixed = 0.0 if abs(fixed) < 1e-12 else fixed  # float noise of a price that has no fixed part
    price = _LinearPrice(
        fixed, uncached, (all_read - fixed) / p1, (all_written - fixed) / p1, (with_output - at_p1) / n
    )
    middle = (p0 + p1) // 2
    check = (middle, middle // 5, middle // 20, 7_891)
    exact = _exact_usd(provider_id, model, check)
    if exact is None or not math.isclose(price.usd(check), exact, rel_tol=1e-9, abs_tol=1e-12):
        return None
    return price


def _linear_price(provider_id: str, model: str) -> tuple[tuple[int, _LinearPrice], ...] | None:
    """The model's price as linear functions of the token counts, one per tier segment of the
    prompt size, or ``None`` when some segment is not linear (then every call uses the exact path).

    Read off genai-prices itself and checked, so it never disagrees with it; read again every hour,
    as prices may change on a date.
    """
    hour = int(time.time() // 3600)
    cached = _linear.get((provider_id, model))
    if cached is not None and cached[0] == hour:
        return cached[1]
    bounds = [-1, *_thresholds(provider_id, model)]
    segments: list[tuple[int, _LinearPrice]] = []
    for i, lo in enumerate(bounds):
        price = _read_segment(provider_id, model, lo, bounds[i + 1] if i + 1 < len(bounds) else None)
        if price is None:
            _linear[(provider_id, model)] = (hour, None)
            return None
        segments.append((lo, price))
    result = tuple(segments)
    _linear[(provider_id, model)] = (hour, result)
    return result


def genai_prices_cost(model: str, usage: LmUsage) -> Cost | None:
    """Price ``model`` (canonical ``"provider:model"``) from genai-prices; ``None`` when it has no price."""
    provider, sep, name = model.partition(":")
    provider_id = GENAI_PRICES_PROVIDERS.get(provider)
    if not sep or not name or provider_id is None or not _known(provider_id, name):
        return None
    prompt = max(usage.prompt_tokens, 0)
    # Counts are clamped to what the prompt can hold, so a server reporting more cached tokens than
    # prompt tokens is not billed for tokens that were never sent (the package tables do the same).
    cache_read = min(max(usage.cached_tokens, 0), prompt)
    cache_write = min(max(int(getattr(usage, "cache_write_tokens", 0) or 0), 0), prompt - cache_read)
    counts = (prompt, cache_read, cache_write, max(usage.completion_tokens, 0))
    segments = _linear_price(provider_id, name)
    if segments is None:
        usd = _exact_usd(provider_id, name, counts)
    else:
        price = segments[0][1]
        for lo, segment_price in segments:
            if prompt > lo:
                price = segment_price
        usd = price.usd(counts)
    if usd is None:
        return None
    return Cost(usd=usd, msats=usd_to_msats(usd))


def price_source(provider: str, model: str) -> PriceSource | None:
    """Which source prices ``provider:model``: ``"package table"`` (a plugin's ``dsrs_cost``, the
    override), ``"genai-prices"`` (the fallback), or ``None`` when neither knows the model."""
    from dsrs._builtin import _plugin as builtin
    from dsrs.plugins._manager import get_host

    canonical = f"{provider}:{model}"
    values = {"model": canonical, "usage": _PROBE_USAGE}
    for impl in get_host().pm.hook.dsrs_cost.get_hookimpls():
        if impl.function is builtin.dsrs_cost_from_genai_prices or impl.hookwrapper or impl.wrapper:
            continue
        try:
            if impl.function(**{a: values[a] for a in impl.argnames if a in values}) is not None:
                return "package table"
        except Exception:  # noqa: S112 - a broken table prices nothing; real calls warn about it
            continue
    if genai_prices_cost(canonical, _PROBE_USAGE) is not None:
        return "genai-prices"
    return None
