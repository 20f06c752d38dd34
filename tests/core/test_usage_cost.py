"""LmUsage arithmetic and the USD -> msats conversion."""

from __future__ import annotations

import pytest

import dsrs
from dsrs._usage import Cost, LmUsage, usd_to_msats


def test_default_is_neutral_and_sum_works() -> None:
    a = LmUsage.from_tokens(10, 5, cached_tokens=4).with_cost(Cost(msats=20))
    b = LmUsage.from_tokens(3, 2, reasoning_tokens=1).with_cost(Cost(msats=7))
    total = LmUsage() + a + b
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (13, 7, 20)
    assert (total.cached_tokens, total.reasoning_tokens, total.calls) == (4, 1, 2)
    assert total.cost_msats == 27
    assert sum([a, b]) == total


def test_unknown_cost_is_none_and_stays_unknown_in_totals() -> None:
    known = LmUsage.from_tokens(1, 1).with_cost(Cost(msats=3))
    unknown = LmUsage.from_tokens(1, 1).with_cost(None)
    assert unknown.cost_msats is None and unknown.cost_usd is None
    assert (known + unknown).cost_msats is None, "a total that silently drops a call would be wrong"


def test_cost_sides_fill_each_other_at_the_configured_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_MSATS_PER_USD", "2000000")
    c = Cost(usd=0.0015).resolved()
    assert c.msats == 3000
    assert Cost(msats=500).resolved().usd == pytest.approx(0.00025)


def test_msats_round_up_never_under_report() -> None:
    assert usd_to_msats(0.0000011) == 2  # 1.1 msats at the default rate -> 2
    assert usd_to_msats(0.000001) == 1


def test_bad_rate_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_MSATS_PER_USD", "lots")
    with pytest.raises(ValueError, match="DSRS_MSATS_PER_USD"):
        dsrs.msats_per_usd()


def test_set_rate_in_code() -> None:
    dsrs.set_msats_per_usd(500_000)
    try:
        assert Cost(usd=1.0).resolved().msats == 500_000
    finally:
        dsrs.set_msats_per_usd(None)


def test_cache_hit_usage_costs_nothing() -> None:
    u = LmUsage.from_tokens(10, 10).with_cost(Cost(msats=30)).as_cache_hit()
    assert u.cache_hit and u.cost_msats == 0 and u.cost_usd == 0 and u.total_tokens == 20
