"""Redis lost mid-run and back again: calls go on, budgets fail closed (or open), state resumes."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("redis", reason="the dsrs-core[redis] extra is not installed")

import redis

import dsrs
from dsrs._redis_state import BudgetUnavailableError, RedisState, RedisStateWarning
from dsrs._redis_state.testing import RedisServer, RedisServerUnavailable

pytestmark = pytest.mark.integration

FAST = {"retry_interval": 0.2, "connect_timeout": 0.3, "socket_timeout": 0.5}


@pytest.fixture(autouse=True)
def _no_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own DSRS_REDIS_* settings must not change what these tests see."""
    for name in ("DSRS_REDIS_URL", "DSRS_REDIS_NAMESPACE", "DSRS_REDIS_FAIL_OPEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of this test's own, so stopping it disturbs nobody."""
    s = RedisServer()
    try:
        s.start()
    except RedisServerUnavailable as exc:
        pytest.skip(f"no redis-server here: {exc}")
    yield s
    s.stop()


async def _settle_now(state: RedisState, reservation: Any, spent: int) -> None:
    await state.budgets.settle(reservation, spent)
    await state.budgets.drain()  # settles run in the background


async def _wait_until_up(state: RedisState, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while state.link.is_down:
        await state.lanes.health("probe")  # any command probes, at most every retry_interval
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("shared state did not resume")
        await asyncio.sleep(0.05)


async def test_lost_mid_run_calls_go_on_and_budgets_fail_closed(server: RedisServer) -> None:
    ns = f"o{uuid.uuid4().hex[:8]}"
    state = RedisState(server.url, namespace=ns, **FAST).install()
    mux = state.attach(
        dsrs.LaneMux(budget_msats=100_000).add_lane("main", dsrs.LM("fake:echo", max_tokens=8).with_cache(True))
    )
    unbudgeted = dsrs.LM("fake:echo").with_cache(True)
    try:
        assert (await mux.acall("before the outage")).lane == "main"
        server.stop()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Plain calls go on with local state: the in-process cache layer serves and stores.
            first = await unbudgeted.acall("during the outage")
            again = await unbudgeted.acall("during the outage")
            assert not first.cache_hit and again.cache_hit
            # Lane health goes on per process.
            await state.lanes.set_status("main", "cooling", seconds=30, reason="RateLimitError")
            assert (await state.lanes.health("main")).status == "cooling"
            await state.lanes.reset("main")
            # Budget spends are refused: nothing is spent without the shared budget.
            with pytest.raises(dsrs.BudgetExceededError, match="unreachable and budgets fail closed"):
                await mux.acall("a budgeted call")
            with pytest.raises(BudgetUnavailableError, match="fail closed"):
                await state.budgets.reserve({"global": 10}, 1)
        ours = [w for w in caught if issubclass(w.category, RedisStateWarning)]
        assert len(ours) == 1 and "unreachable" in str(ours[0].message)  # one warning per outage
        assert "fail closed" in str(ours[0].message) or "fail-closed" in str(ours[0].message)
        assert [w for w in caught if w not in ours] == []
        server.start()
        await _wait_until_up(state)
        # Shared state resumes: budgets are granted again, the ledger pushes what it kept.
        assert (await mux.acall("after the outage")).lane == "main"
        assert state.ledger.flush()
        total = state.ledger.total()
        # The server came back empty (no persistence): it holds what was counted after the restart,
        # including the calls made during the outage that the ledger kept for it.
        assert total.counts["calls"] >= 3
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no new warning once Redis is back
            await state.lanes.set_status("main", "cooling", seconds=5, reason="429")
            other = RedisState(server.url, namespace=ns)
            assert (await other.lanes.health("main")).status == "cooling"
            await other.aclose()
    finally:
        await state.aclose()


async def test_fail_open_spends_locally_and_replays_them(server: RedisServer) -> None:
    ns = f"o{uuid.uuid4().hex[:8]}"
    state = RedisState(server.url, namespace=ns, fail_open=True, **FAST)
    try:
        r = await state.budgets.reserve({"global": 50}, 10)
        await state.budgets.settle(r, 7)
        await state.budgets.drain()  # settles land in the background; this one before the outage
        server.stop()
        with pytest.warns(RedisStateWarning, match="fail-open"):
            held = await state.budgets.reserve({"global": 50}, 30)
        assert held.local  # type: ignore[attr-defined]
        with pytest.raises(dsrs.BudgetExceededError, match="local while Redis is lost"):
            await state.budgets.reserve({"global": 50}, 30)  # the local limit still holds in-process
        await state.budgets.settle(held, 20)
        server.start()  # comes back empty: no persistence
        await _wait_until_up(state)
        await state.budgets.reserve({"global": 50}, 1)  # first command after recovery replays
        status = await state.budgets.status("global")
        assert status.spent == 20 and status.reserved == 1
    finally:
        await state.aclose()


async def test_a_hold_made_before_the_outage_is_settled_after_it(server: RedisServer) -> None:
    ns = f"o{uuid.uuid4().hex[:8]}"
    state = RedisState(server.url, namespace=ns, **FAST)
    try:
        r = await state.budgets.reserve({"global": 50}, 10)
        server.stop()
        with pytest.warns(RedisStateWarning):
            await _settle_now(state, r, 9)  # kept locally, the hold expires by itself
        server.start()
        await _wait_until_up(state)
        await state.budgets.reserve({"global": 50}, 1)
        assert (await state.budgets.status("global")).spent == 9
    finally:
        await state.aclose()


async def test_a_failing_server_is_treated_like_a_lost_one(server: RedisServer) -> None:
    """Out of memory (writes refused): calls go on locally, spends fail closed, then it recovers."""
    ns = f"o{uuid.uuid4().hex[:8]}"
    state = RedisState(server.url, namespace=ns, **FAST).install()
    admin = redis.Redis.from_url(server.url)
    lm = dsrs.LM("fake:echo").with_cache(True)
    try:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert (await lm.acall("while the server refuses writes")).text == "while the server refuses writes"
            with pytest.raises(BudgetUnavailableError):
                await state.budgets.reserve({"global": 10}, 1)
        ours = [w for w in caught if issubclass(w.category, RedisStateWarning)]
        assert len(ours) == 1 and "OutOfMemoryError" in str(ours[0].message)
        admin.config_set("maxmemory", "0")
        await _wait_until_up(state)
        r = await state.budgets.reserve({"global": 10}, 1)
        await state.budgets.settle(r, 1)
        assert (await state.budgets.status("global")).spent == 1
    finally:
        admin.config_set("maxmemory", "0")
        admin.close()
        await state.aclose()
