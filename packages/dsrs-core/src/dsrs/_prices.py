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


def genai_prices_cost(model: str, usage: LmUsage) -> Cost | None:
    """Price ``model`` (canonical ``"provider:model"``) from genai-prices; ``None`` when it has no price."""
    provider, sep, name = model.partition(":")
    provider_id = GENAI_PRICES_PROVIDERS.get(provider)
    if not sep or not name or provider_id is None or not _known(provider_id, name):
        return None
    module = _genai_prices()
    prompt = max(usage.prompt_tokens, 0)
    # Counts are clamped to what the prompt can hold, so a server reporting more cached tokens than
    # prompt tokens is not billed for tokens that were never sent (the package tables do the same).
    cache_read = min(max(usage.cached_tokens, 0), prompt)
    cache_write = min(max(int(getattr(usage, "cache_write_tokens", 0) or 0), 0), prompt - cache_read)
    priced = module.Usage(
        input_tokens=prompt,
        cache_read_tokens=cache_read or None,
        cache_write_tokens=cache_write or None,
        output_tokens=max(usage.completion_tokens, 0),
    )
    try:
        calculation = module.calc_price(priced, name, provider_id=provider_id)
    except (LookupError, ValueError):
        return None
    usd = float(calculation.total_price)
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
