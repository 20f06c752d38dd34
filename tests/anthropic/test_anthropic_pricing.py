"""Claude prices from ``pricing.json``: every kind of input at its own rate, long-context tiers,
dated snapshots priced as their family, unknown models ``None`` (never 0)."""

from __future__ import annotations

import pytest

import dsrs
from dsrs.plugins import hooks
from dsrs_anthropic.pricing import cost_of, price_for, price_table


def usage(prompt: int, completion: int, *, reads: int = 0, writes: int = 0, writes_1h: int = 0) -> dsrs.LmUsage:
    detail = {"cache_write_1h_tokens": writes_1h} if writes_1h else {}
    return dsrs.LmUsage.from_tokens(prompt, completion, cached_tokens=reads, cache_write_tokens=writes, detail=detail)


def usd(model: str, u: dsrs.LmUsage) -> float:
    cost = cost_of(model, u)
    assert cost is not None and cost.usd is not None
    return cost.usd


def test_each_kind_of_input_has_its_own_rate() -> None:
    # Sonnet 4.5 per 1M: input 3, 5-minute writes 3.75, 1-hour writes 6, reads 0.30, output 15
    # (100k-token prompts: below the long-context threshold).
    n = 100_000
    assert usd("claude-sonnet-4-5", usage(n, 0)) == pytest.approx(0.3)
    assert usd("claude-sonnet-4-5", usage(n, 0, reads=n)) == pytest.approx(0.03)
    assert usd("claude-sonnet-4-5", usage(n, 0, writes=n)) == pytest.approx(0.375)
    assert usd("claude-sonnet-4-5", usage(n, 0, writes=n, writes_1h=n)) == pytest.approx(0.6)
    assert usd("claude-sonnet-4-5", usage(0, n)) == pytest.approx(1.5)
    mixed = usage(100_000, 1000, reads=60_000, writes=30_000, writes_1h=10_000)
    expected = (10_000 * 3.0 + 60_000 * 0.30 + 20_000 * 3.75 + 10_000 * 6.0 + 1000 * 15.0) / 1e6
    assert usd("claude-sonnet-4-5", mixed) == pytest.approx(expected)


def test_reads_are_a_tenth_and_writes_above_input_for_every_model() -> None:
    table, _ = price_table()
    for name, p in table.items():
        assert p.cache_read[0] == pytest.approx(p.input[0] / 10, rel=0.25), name
        assert p.cache_write[0] > p.input[0] and p.cache_write_1h[0] > p.cache_write[0], name


def test_long_context_tier_above_200k_prompt_tokens() -> None:
    assert usd("claude-sonnet-4-5", usage(200_000, 0)) == pytest.approx(0.6)
    assert usd("claude-sonnet-4-5", usage(200_001, 0)) == pytest.approx(200_001 * 6.0 / 1e6)
    assert usd("claude-opus-4-1", usage(300_000, 0)) == pytest.approx(300_000 * 15.0 / 1e6)  # no tier


def test_names_snapshots_aliases_and_unknowns() -> None:
    assert price_for("claude-sonnet-4-5-20250929") == price_for("claude-sonnet-4-5")
    assert price_for("claude-3-5-sonnet-latest") == price_for("claude-3-5-sonnet")
    assert price_for("claude-sonnet-4-20250514") == price_for("claude-sonnet-4-0")
    assert price_for("claude-3-5-haiku-20241022") == price_for("claude-3-5-haiku")
    assert price_for("claude-9") is None and price_for("claude-sonnet-4-5-mystery") is None
    assert cost_of("claude-9", usage(10, 10)) is None


def test_lying_cache_counts_never_price_more_than_the_prompt() -> None:
    honest = usd("claude-haiku-4-5", usage(100, 0, reads=100))
    assert usd("claude-haiku-4-5", usage(100, 0, reads=10**6)) == pytest.approx(honest)
    assert usd("claude-haiku-4-5", usage(100, 0, writes=10**6)) == pytest.approx(100 * 1.25 / 1e6)


def test_the_hook_prices_only_anthropic_models() -> None:
    cost = hooks().cost("anthropic:claude-haiku-4-5", usage(100_000, 0))
    assert cost is not None and cost.resolved().usd == pytest.approx(0.1)
    from dsrs_anthropic import _plugin

    assert _plugin.dsrs_cost("openai:claude-haiku-4-5", usage(1, 1)) is None


@pytest.mark.parametrize("tokens", [(50_000, 2_000, 10_000, 5_000), (300_000, 1_000, 0, 0)])
def test_the_table_agrees_with_genai_prices(tokens: tuple[int, int, int, int]) -> None:
    """The table was copied from genai-prices: every model costs what genai-prices says (5-minute
    writes and reads included, long-context tier too)."""
    pytest.importorskip("genai_prices")
    from dsrs._prices import genai_prices_cost  # test-only: the core's genai-prices fallback

    prompt, completion, reads, writes = tokens
    u = usage(prompt, completion, reads=reads, writes=writes)
    table, _ = price_table()
    for name in table:
        theirs = genai_prices_cost(f"anthropic:{name}", u)
        assert theirs is not None and theirs.usd is not None, name
        assert usd(name, u) == pytest.approx(theirs.usd, rel=1e-9), name
