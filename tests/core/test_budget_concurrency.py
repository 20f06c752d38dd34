"""Budgets in msats: reserve before, settle after, atomically — never overspent under concurrency."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import dsrs
from dsrs._budget import InProcessBudgetStore
from dsrs._cache import set_cache
from dsrs._lanemux import LaneMux, RetryPolicy
from dsrs.testing import openai_wire_server

# fake:echo prices 1 msat per prompt token and 2 per completion token; "ping" is one token each way.
PING_COST = 3


def test_store_reserve_settle_and_refusal() -> None:
    store = InProcessBudgetStore()
    limits = {"g": 100, "lane": 50}
    r1 = store.reserve_sync(limits, 40)
    with pytest.raises(dsrs.BudgetExceededError, match=r"'lane' would be exceeded.*10 of 50 msats left"):
        store.reserve_sync(limits, 20)
    # A refused reservation holds nothing anywhere.
    assert store.status_sync("g", 100).reserved == 40
    store.settle_sync(r1, 15)
    store.settle_sync(r1, 15)  # settling twice is a no-op
    g = store.status_sync("g", 100)
    assert (g.spent, g.reserved, g.remaining) == (15, 0, 85)
    r2 = store.reserve_sync(limits, 35)
    store.settle_sync(r2, 0)
    assert store.status_sync("lane", 50).spent == 15
    with pytest.raises(ValueError):
        store.reserve_sync(limits, -1)


def test_store_is_exact_under_threads() -> None:
    store = InProcessBudgetStore()
    limits = {"g": 10_000}
    granted = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal granted
        for _ in range(2000):
            try:
                r = store.reserve_sync(limits, 7)
            except dsrs.BudgetExceededError:
                continue
            store.settle_sync(r, 3)
            with lock:
                granted += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = store.status_sync("g", 10_000)
    assert status.reserved == 0
    assert status.spent == 3 * granted
    assert status.spent <= 10_000


async def test_500_concurrent_calls_never_overspend() -> None:
    # Every call reserves the same upper bound R and really costs PING_COST; with a delay, all 500
    # reservations are taken before any settles, so exactly budget // R calls may run.
    mux = LaneMux(budget_msats=0).add_lane("fake", dsrs.LM("fake:echo", delay=0.05, max_tokens=1))
    reserve = mux.estimate_msats(mux.lane("fake"), mux.lane("fake").lm.build_request("ping"))
    assert reserve >= PING_COST
    budget = 100 * reserve + reserve - 1
    mux.with_budget_msats(budget)

    results = await asyncio.gather(*(mux.acall("ping") for _ in range(500)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, dsrs.LMResponse)]
    refused = [r for r in results if isinstance(r, dsrs.BudgetExceededError)]
    assert len(ok) == 100 and len(refused) == 400
    status = (await mux.abudget_status())["global"]
    assert status.reserved == 0
    assert status.spent == sum(r.usage.cost_msats or 0 for r in ok) == 100 * PING_COST
    assert status.spent <= budget
    assert mux.usage.cost_msats == status.spent and mux.usage.calls == 100
    # Once settled, the unused reservations are free again.
    assert (await mux.acall("ping")).usage.cost_msats == PING_COST


async def test_budget_refusal_happens_before_any_request() -> None:
    with openai_wire_server() as srv:
        mux = LaneMux().add_lane("s", dsrs.LM("m", base_url=srv.url), budget_msats=10, reserve_msats=11)
        with pytest.raises(dsrs.BudgetExceededError, match="no lane fits the budget"):
            await mux.acall("x")
        assert srv.requests == []


async def test_lane_budget_moves_calls_to_the_next_lane() -> None:
    mux = (
        LaneMux()
        .add_lane("paid", dsrs.LM("fake:echo", max_tokens=1), budget_msats=2 * 100)
        .add_lane("spare", dsrs.LM("fake:echo", max_tokens=1))
    )
    lanes = [(await mux.acall("ping")).lane for _ in range(200)]
    paid = lanes.count("paid")
    assert paid >= 1 and "spare" in lanes
    status = await mux.abudget_status()
    assert status["paid"].spent == paid * PING_COST <= 200
    # Budgets account for calls made under a limit; usage counts every call.
    assert status["spare"].spent == 0
    assert mux.usage_by_lane["spare"].cost_msats == lanes.count("spare") * PING_COST
    assert mux.usage.cost_msats == 200 * PING_COST


async def test_unknown_price_needs_a_reservation_and_is_charged_the_bound() -> None:
    with openai_wire_server() as srv:
        lm = dsrs.LM("m", base_url=srv.url)
        no_reserve = LaneMux(budget_msats=1000).add_lane("unpriced", lm)
        with pytest.raises(dsrs.BudgetExceededError, match="price of openai-compatible:m is unknown"):
            await no_reserve.acall("x")
        assert srv.requests == []
        mux = LaneMux(budget_msats=1000, reserve_msats=300).add_lane("unpriced", lm)
        r = await mux.acall("x")
        assert r.usage.cost_msats is None
        status = (await mux.abudget_status())["global"]
        assert (status.spent, status.reserved) == (300, 0)  # unknown cost: the bound is charged


async def test_failures_release_their_reservation() -> None:
    mux = LaneMux(budget_msats=1000, retry=RetryPolicy(max_attempts=2, base_delay=0.001)).add_lane(
        "bad", dsrs.LM("fake:echo", fail="unavailable", max_tokens=1)
    )
    with pytest.raises(dsrs.AllLanesFailedError):
        await mux.acall("ping")
    status = (await mux.abudget_status())["global"]
    assert (status.spent, status.reserved) == (0, 0)


async def test_cache_hits_do_not_need_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_CACHE", "memory")
    set_cache(None)
    try:
        mux = LaneMux().add_lane("c", dsrs.LM("fake:echo", cache=True, max_tokens=1), reserve_msats=PING_COST)
        mux.with_budget_msats(PING_COST)
        assert (await mux.acall("ping")).usage.cost_msats == PING_COST
        hit = await mux.acall("ping")  # the budget is spent, but a hit costs nothing
        assert hit.cache_hit and hit.usage.cost_msats == 0
        with pytest.raises(dsrs.BudgetExceededError):
            await mux.acall("pong")
    finally:
        set_cache(None)


def test_sync_calls_from_threads_never_overspend() -> None:
    mux = LaneMux().add_lane("f", dsrs.LM("fake:echo", max_tokens=1, delay=0.001), reserve_msats=PING_COST)
    mux.with_budget_msats(PING_COST * 150)

    def call(_: int) -> int:
        try:
            return mux.call("ping").usage.cost_msats or 0
        except dsrs.BudgetExceededError:
            return -1

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(call, range(300)))
    assert outcomes.count(PING_COST) == 150 and outcomes.count(-1) == 150
    assert mux.budget_status()["global"].spent == PING_COST * 150


def test_estimate_is_an_upper_bound_of_the_actual_cost() -> None:
    mux = LaneMux(budget_msats=10**9).add_lane("f", dsrs.LM("fake:echo", max_tokens=50))
    for prompt in ("ping", "a much longer prompt, with punctuation; and words!", "ünïcödé ✓ 漢字"):
        lane = mux.lane("f")
        bound = mux.estimate_msats(lane, lane.lm.build_request(prompt))
        actual = mux.call(prompt).usage.cost_msats
        assert actual is not None and actual <= bound
