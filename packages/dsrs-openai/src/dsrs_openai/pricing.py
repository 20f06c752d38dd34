"""Prices of the models this package serves, read from ``pricing.json`` (data, not code).

Cost of one call = (prompt - cached) * input + cached * cached_input + completion * output, per
million tokens. Cached tokens are billed once, at the cached rate (they are *included* in the
prompt count); reasoning tokens are included in the completion count and billed as output. An
unknown model costs ``None`` (unknown), never 0. ``openai-responses`` and ``codex`` use the OpenAI
table (Codex runs are priced as the same tokens would cost on the API).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from dsrs.types import Cost, LmUsage

__all__ = ["ModelPrice", "cost_for", "price_of", "pricing_table"]

#: Providers that bill from another provider's table.
_TABLE_OF = {"openai-responses": "openai", "codex": "openai"}
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. ``cached_input`` ``None`` means cached tokens cost the input rate."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, usage: LmUsage) -> Cost:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        usd = (
            (usage.prompt_tokens - cached) * self.input + cached * cached_rate + usage.completion_tokens * self.output
        ) / 1e6
        return Cost(usd=usd)


@lru_cache(maxsize=1)
def pricing_table() -> dict[str, dict[str, ModelPrice]]:
    """``{provider: {model: ModelPrice}}`` from the packaged ``pricing.json``."""
    raw: dict[str, Any] = json.loads(resources.files("dsrs_openai").joinpath("pricing.json").read_text("utf-8"))
    table: dict[str, dict[str, ModelPrice]] = {}
    for provider, models in raw.items():
        if provider.startswith("_") or not isinstance(models, dict):
            continue
        table[provider] = {
            name: ModelPrice(
                float(p["input"]),
                float(p["output"]),
                None if p.get("cached_input") is None else float(p["cached_input"]),
            )
            for name, p in models.items()
        }
    return table


def price_of(provider: str, model: str) -> ModelPrice | None:
    """The price of ``model`` at ``provider``: exact id, then without a date suffix; else ``None``."""
    models = pricing_table().get(_TABLE_OF.get(provider, provider))
    if not models:
        return None
    if model in models:
        return models[model]
    undated = _DATE_SUFFIX.sub("", model)
    return models.get(undated)


def cost_for(canonical_model: str, usage: LmUsage) -> Cost | None:
    """Price a call given ``"provider:model"``; ``None`` when the model is not in the table."""
    provider, sep, model = canonical_model.partition(":")
    if not sep:
        return None
    price = price_of(provider, model)
    return price.cost(usage) if price is not None else None
