"""genai-prices as the fallback price: asked after every package table, offline, tiers and cache rates.

The expected figures are computed here from the snapshot's own per-million rates (``ModelPrice``),
independently of ``dsrs._prices``, so a wrong token mapping (cached tokens billed twice, the wrong
provider id, the tier ignored) shows up as a different number.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsrs
from dsrs import _prices
from dsrs._prices import genai_prices_cost, price_source
from dsrs.plugins import hookimpl, hooks, register_plugin
from dsrs.testing import isolated_plugins

genai_prices = pytest.importorskip("genai_prices", reason="the dsrs-core[prices] extra is not installed")


@pytest.fixture(autouse=True)
def core_only_host() -> Iterator[None]:
    """Only dsrs-core's own plugin: no package table lists openai/google/anthropic models here."""
    with isolated_plugins():
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection other than loopback fails the test: the fallback must never download prices."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not isinstance(address, (str, bytes)):
            raise AssertionError(f"network access to {address!r} during pricing")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _rates(provider_id: str, model: str) -> Any:
    """The snapshot's ModelPrice for a model today (USD per million tokens, maybe tiered)."""
    snapshot = genai_prices.data_snapshot.get_snapshot()
    _, info = snapshot.find_provider_model(model, None, provider_id, None)
    return info.get_prices(datetime.now(tz=timezone.utc))


def _flat(value: Any) -> Decimal:
    assert isinstance(value, Decimal), f"expected a flat rate, got {value!r}"
    return value


def test_a_model_no_table_lists_gets_the_genai_prices_price() -> None:
    rates = _rates("openai", "gpt-4o")
    usage = dsrs.LmUsage.from_tokens(120_000, 30_000, cached_tokens=20_000)
    expected = (
        (120_000 - 20_000) * _flat(rates.input_mtok)
        + 20_000 * _flat(rates.cache_read_mtok)
        + 30_000 * _flat(rates.output_mtok)
    ) / 1_000_000
    cost = hooks().cost("openai:gpt-4o", usage)
    assert cost is not None and cost.usd == pytest.approx(float(expected))
    assert cost.msats == dsrs.Cost(usd=float(expected)).resolved().msats  # dsrs's msats rate
    assert price_source("openai", "gpt-4o") == "genai-prices"


def test_cached_tokens_are_cheaper_and_never_billed_twice() -> None:
    plain = genai_prices_cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(100_000, 0))
    cached = genai_prices_cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(100_000, 0, cached_tokens=100_000))
    assert plain is not None and cached is not None
    assert plain.usd is not None and cached.usd is not None
    assert 0 < cached.usd < plain.usd


def test_a_call_is_priced_end_to_end_through_the_hook() -> None:
    """A provider named like a vendor (serving the fake's answers) is priced by genai-prices."""

    class VendorNamedFake:
        @hookimpl
        def dsrs_register_providers(self, register: Any) -> None:
            register(dsrs.ProviderSpec(name="anthropic", factory="dsrs._builtin.fake:FakeProvider"))

    register_plugin(VendorNamedFake(), name="vendor-named-fake")
    response = dsrs.LM("anthropic:claude-sonnet-4-5").call("one two three four five")
    rates = _rates("anthropic", "claude-sonnet-4-5")
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    expected = usage.prompt_tokens * _tier0(rates.input_mtok) + usage.completion_tokens * _tier0(rates.output_mtok)
    assert usage.cost_usd == pytest.approx(float(expected / 1_000_000))
    assert usage.cost_msats is not None and usage.cost_msats > 0


def _tier0(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else value.base


def test_tiered_prices_follow_the_prompt_size() -> None:
    rates = _rates("google", "gemini-2.5-pro")
    assert not isinstance(rates.input_mtok, Decimal), "this model is tiered in the snapshot"
    small = genai_prices_cost("google:gemini-2.5-pro", dsrs.LmUsage.from_tokens(100_000, 0))
    large = genai_prices_cost("google:gemini-2.5-pro", dsrs.LmUsage.from_tokens(300_000, 0))
    assert small is not None and large is not None and small.usd is not None and large.usd is not None
    assert small.usd == pytest.approx(float(100_000 * rates.input_mtok.base / 1_000_000))
    assert large.usd / 300_000 > small.usd / 100_000, "above the threshold the whole prompt costs more per token"


@dataclass(frozen=True)
class UsageWithCacheWrites:
    """LmUsage plus ``cache_write_tokens`` (read with getattr, as dsrs._prices does until it lands)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0


def test_cache_writes_are_billed_at_the_write_rate() -> None:
    rates = _rates("anthropic", "claude-sonnet-4-5")
    usage = UsageWithCacheWrites(prompt_tokens=10_000, completion_tokens=0, cache_write_tokens=8_000)
    cost = genai_prices_cost("anthropic:claude-sonnet-4-5", usage)  # type: ignore[arg-type]
    expected = 2_000 * _tier0(rates.input_mtok) + 8_000 * _tier0(rates.cache_write_mtok)
    assert cost is not None and cost.usd == pytest.approx(float(expected / 1_000_000))


def test_lying_usage_is_clamped_not_billed_for_tokens_never_sent() -> None:
    honest = genai_prices_cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(1_000, 0, cached_tokens=1_000))
    lying = genai_prices_cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(1_000, 0, cached_tokens=50_000))
    negative = genai_prices_cost("openai:gpt-4o", dsrs.LmUsage(prompt_tokens=-5, completion_tokens=-7))
    assert lying == honest
    assert negative is not None and negative.usd == 0


class OurTable:
    """A package table that lists openai:gpt-4o at its own (deliberately odd) price."""

    @hookimpl
    def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
        return dsrs.Cost(msats=7) if model == "openai:gpt-4o" else None


def test_a_model_in_our_tables_keeps_our_price() -> None:
    register_plugin(OurTable(), name="our-table")
    assert hooks().cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(1_000, 1_000)) == dsrs.Cost(msats=7)
    assert price_source("openai", "gpt-4o") == "package table"
    # the same table does not know gpt-4o-mini: the fallback still answers for it
    assert price_source("openai", "gpt-4o-mini") == "genai-prices"
    assert price_source("fake", "echo") == "package table"  # core's own table


@pytest.mark.parametrize(
    "model",
    [
        "openai:no-such-model-xyz",  # a priced provider, an unknown model
        "ollama:llama3.2",  # a local provider: no fallback, whoever runs it sets the price
        "openai-compatible:gpt-4o",  # any endpoint: the model name alone says nothing about the bill
        "nobody:gpt-4o",
        "gpt-4o",  # not canonical
    ],
)
def test_unknown_to_both_stays_none(model: str) -> None:
    assert hooks().cost(model, dsrs.LmUsage.from_tokens(10, 10)) is None
    provider, _, name = model.rpartition(":")
    assert price_source(provider, name) is None


def test_an_unknown_model_is_looked_up_once() -> None:
    _prices._known.cache_clear()
    for _ in range(50):
        assert genai_prices_cost("openai:no-such-model-xyz", dsrs.LmUsage.from_tokens(1, 1)) is None
    info = _prices._known.cache_info()
    assert (info.misses, info.hits) == (1, 49)


def test_only_the_bundled_snapshot_is_used() -> None:
    genai_prices_cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(1, 1))
    assert genai_prices.data_snapshot._custom_snapshot is None, "dsrs must never install a downloaded snapshot"


# Models of every mapped vendor, flat and tiered (Gemini 2.5 Pro and Claude Sonnet 4.5 change price
# above 200k prompt tokens), some with cache-write prices, some without.
SAMPLE_MODELS = [
    "openai:gpt-4o",
    "openai:gpt-4o-mini",
    "google:gemini-2.5-pro",
    "google:gemini-2.5-flash",
    "anthropic:claude-sonnet-4-5",
    "anthropic:claude-3-5-haiku",
    "deepseek:deepseek-chat",
    "mistral:mistral-large-latest",
]


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from(SAMPLE_MODELS),
    prompt=st.integers(0, 1_200_000),
    cached_share=st.floats(0, 1),
    write_share=st.floats(0, 1),
    completion=st.integers(0, 200_000),
)
def test_the_fast_path_agrees_with_genai_prices_own_calculation(
    model: str, prompt: int, cached_share: float, write_share: float, completion: int
) -> None:
    provider, _, name = model.partition(":")
    provider_id = _prices.GENAI_PRICES_PROVIDERS[provider]
    if not _prices._known(provider_id, name):
        pytest.skip(f"{model} is not in this genai-prices snapshot")
    cached = int(prompt * cached_share)
    written = int((prompt - cached) * write_share)
    usage = UsageWithCacheWrites(prompt, completion, cached, written)
    cost = genai_prices_cost(model, usage)  # type: ignore[arg-type]
    exact = _prices._exact_usd(provider_id, name, (prompt, cached, written, completion))
    assert cost is not None and exact is not None
    assert cost.usd == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_tiered_models_use_the_fast_path_too() -> None:
    segments = _prices._linear_price("google", "gemini-2.5-pro")
    assert segments is not None and [lo for lo, _ in segments] == [-1, 200_000]
