"""Gemini prices (pricing.json, from ai.google.dev/gemini-api/docs/pricing) and the dsrs_cost hook."""

from __future__ import annotations

import pytest

from dsrs import LmUsage
from dsrs_google import _plugin
from dsrs_google.pricing import cost_of, price_for, price_table


def usage(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> LmUsage:
    return LmUsage.from_tokens(prompt, completion, cached_tokens=cached, reasoning_tokens=reasoning)


def usd(model: str, u: LmUsage) -> float:
    cost = cost_of(model, u)
    assert cost is not None and cost.usd is not None
    return cost.usd


def test_flat_price() -> None:
    # gemini-2.5-flash: $0.30 in, $2.50 out (thinking included) per 1M tokens.
    assert usd("gemini-2.5-flash", usage(1_000_000, 1_000_000)) == pytest.approx(0.30 + 2.50)


def test_cached_tokens_are_billed_at_the_cache_rate_once() -> None:
    # 1M prompt of which 600k cached: 400k * 0.30 + 600k * 0.03.
    assert usd("gemini-2.5-flash", usage(1_000_000, 0, cached=600_000)) == pytest.approx(0.4 * 0.30 + 0.6 * 0.03)


def test_long_context_tier() -> None:
    # gemini-2.5-pro: <=200k prompt $1.25/$10, above $2.50/$15 — for the whole call.
    assert usd("gemini-2.5-pro", usage(200_000, 1_000)) == pytest.approx(0.2 * 1.25 + 0.001 * 10)
    assert usd("gemini-2.5-pro", usage(200_001, 1_000)) == pytest.approx(0.200001 * 2.5 + 0.001 * 15)
    # gemini-1.5-* switch at 128k.
    assert usd("gemini-1.5-flash", usage(128_001, 0)) == pytest.approx(0.128001 * 0.15)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("models/gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("gemini-pro", "gemini-1.0-pro"),
    ],
)
def test_versioned_names_price_as_their_family(model: str, family: str) -> None:
    assert price_for(model) == price_table()[0][family]


@pytest.mark.parametrize(
    "model", ["gemini-2.5-flash-preview-tts", "gemini-2.5-flash-image-preview", "gemini-9-ultra", "gemma-3-27b-it"]
)
def test_unknown_models_have_no_price(model: str) -> None:
    assert cost_of(model, usage(10, 10)) is None


def test_hook_prices_only_google_models() -> None:
    cost = _plugin.dsrs_cost("google:gemini-2.5-flash", usage(10, 10))
    assert cost is not None and cost.usd == pytest.approx((10 * 0.30 + 10 * 2.50) / 1e6)
    assert _plugin.dsrs_cost("google:gemini-9", usage(10, 10)) is None
    assert _plugin.dsrs_cost("openai:gpt-4o", usage(10, 10)) is None
