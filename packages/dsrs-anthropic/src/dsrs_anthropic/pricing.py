"""Claude prices, kept as data (``pricing.json``), and the cost of one call from its usage.

Each kind of input token has its own rate: uncached input, cache reads (``cached_tokens``, about a
tenth of input), 5-minute cache writes (``cache_write_tokens``, above input) and 1-hour writes
(``usage.detail["cache_write_1h_tokens"]``, higher still). Dated snapshots price as their family
(``claude-sonnet-4-5-20250929``, ``claude-3-5-sonnet-latest``); a model not in the table has a
cost of ``None``, never a guess.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from dsrs.types import Cost, LmUsage

__all__ = ["ModelPrice", "cost_of", "price_for", "price_table"]

_VERSION_SUFFIX = re.compile(r"^-(\d{8}|latest|v\d+(:\d+)?)$")
Pair = tuple[float, float]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens as ``(normal, long-context)`` pairs; ``threshold`` is the prompt size that switches."""

    input: Pair
    output: Pair
    cache_read: Pair
    cache_write: Pair
    cache_write_1h: Pair
    threshold: int | None = None

    def tier(self, prompt_tokens: int) -> int:
        return 1 if self.threshold is not None and prompt_tokens > self.threshold else 0


def _pair(value: Any) -> Pair:
    if isinstance(value, list):
        return float(value[0]), float(value[1])
    return float(value), float(value)


@lru_cache(maxsize=1)
def price_table() -> tuple[dict[str, ModelPrice], dict[str, str]]:
    """The parsed ``pricing.json``: prices by model name, and aliases."""
    raw = json.loads(resources.files("dsrs_anthropic").joinpath("pricing.json").read_text("utf-8"))
    table = {
        name: ModelPrice(
            input=_pair(p["input"]),
            output=_pair(p["output"]),
            cache_read=_pair(p["cache_read"]),
            cache_write=_pair(p["cache_write"]),
            cache_write_1h=_pair(p["cache_write_1h"]),
            threshold=p.get("threshold"),
        )
        for name, p in raw["models"].items()
    }
    return table, dict(raw.get("aliases") or {})


def price_for(model: str) -> ModelPrice | None:
    """The price of ``model`` (a bare Claude name, dated or not), or ``None`` when unknown."""
    table, aliases = price_table()
    name = model.strip().lower()
    name = aliases.get(name, name)
    if name in table:
        return table[name]
    best = None
    for key in (*table, *aliases):
        if (
            name.startswith(key + "-")
            and _VERSION_SUFFIX.match(name[len(key) :])
            and (best is None or len(key) > len(best))
        ):
            best = key
    if best is None:
        return None
    return table[aliases.get(best, best)]


def cost_of(model: str, usage: LmUsage) -> Cost | None:
    """USD cost of one call (``None`` for a model without a known price)."""
    price = price_for(model)
    if price is None:
        return None
    tier = price.tier(usage.prompt_tokens)
    reads = min(usage.cached_tokens, usage.prompt_tokens)
    writes = min(usage.cache_write_tokens, usage.prompt_tokens - reads)
    writes_1h = usage.detail.get("cache_write_1h_tokens", 0) if isinstance(usage.detail, dict) else 0
    if isinstance(writes_1h, bool) or not isinstance(writes_1h, int) or writes_1h < 0:
        writes_1h = 0
    writes_1h = min(writes_1h, writes)
    uncached = usage.prompt_tokens - reads - writes
    usd = (
        uncached * price.input[tier]
        + reads * price.cache_read[tier]
        + (writes - writes_1h) * price.cache_write[tier]
        + writes_1h * price.cache_write_1h[tier]
        + usage.completion_tokens * price.output[tier]
    ) / 1_000_000
    return Cost(usd=usd)
