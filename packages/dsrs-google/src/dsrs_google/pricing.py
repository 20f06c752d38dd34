"""Gemini prices, kept as data (``pricing.json``), and the cost of one call from its usage.

Versioned names price as their family (``gemini-2.0-flash-001``, ``gemini-2.5-flash-preview-05-20``);
other variants (``-image``, ``-tts``, ``-live``...) have prices of their own and are unknown here,
so their cost is ``None``, never a guess.
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

_VERSION_SUFFIX = re.compile(r"^-(\d{3}|latest|(preview|exp)(-\d{2}-\d{2}|-\d{2}-\d{4}|-\d{4}-\d{2}-\d{2}|-\d{4})?)$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens, as ``(normal, long-context)`` pairs; ``threshold`` is the prompt size that switches."""

    input: tuple[float, float]
    output: tuple[float, float]
    cached_input: tuple[float, float] | None
    threshold: int | None = None

    def tier(self, prompt_tokens: int) -> int:
        return 1 if self.threshold is not None and prompt_tokens > self.threshold else 0


def _pair(value: Any) -> tuple[float, float]:
    if isinstance(value, list):
        return float(value[0]), float(value[1])
    return float(value), float(value)


@lru_cache(maxsize=1)
def price_table() -> tuple[dict[str, ModelPrice], dict[str, str]]:
    """The parsed ``pricing.json``: prices by model name, and aliases."""
    raw = json.loads(resources.files("dsrs_google").joinpath("pricing.json").read_text("utf-8"))
    table = {
        name: ModelPrice(
            input=_pair(p["input"]),
            output=_pair(p["output"]),
            cached_input=_pair(p["cached_input"]) if "cached_input" in p else None,
            threshold=p.get("threshold"),
        )
        for name, p in raw["models"].items()
    }
    return table, dict(raw.get("aliases") or {})


def price_for(model: str) -> ModelPrice | None:
    """The price of ``model`` (a bare Gemini name, ``models/`` allowed), or ``None`` when unknown."""
    table, aliases = price_table()
    name = model.strip().lower().removeprefix("models/")
    name = aliases.get(name, name)
    if name in table:
        return table[name]
    best = None
    for key in table:
        if (
            name.startswith(key + "-")
            and _VERSION_SUFFIX.match(name[len(key) :])
            and (best is None or len(key) > len(best))
        ):
            best = key
    return table[best] if best is not None else None


def cost_of(model: str, usage: LmUsage) -> Cost | None:
    """USD cost of one call (``None`` for a model without a known price)."""
    price = price_for(model)
    if price is None:
        return None
    tier = price.tier(usage.prompt_tokens)
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_rate = price.cached_input[tier] if price.cached_input is not None else price.input[tier]
    usd = (
        (usage.prompt_tokens - cached) * price.input[tier]
        + cached * cached_rate
        + usage.completion_tokens * price.output[tier]
    ) / 1_000_000
    return Cost(usd=usd)
