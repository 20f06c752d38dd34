"""Shared state in a real redis-server (started by the fixture through scripts/redis-server.sh)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest

pytest.importorskip("redis", reason="the dsrs-core[redis] extra is not installed")

import dsrs
from dsrs._redis_state import (
    RedisState,
    RedisUnavailableError,
)
from dsrs._redis_state.testing import RedisServer, free_port
from dsrs._usage import UsageRecord

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own DSRS_REDIS_* settings must not change what these tests see."""
    for name in ("DSRS_REDIS_URL", "DSRS_REDIS_NAMESPACE", "DSRS_REDIS_FAIL_OPEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def state(redis_server: RedisServer, namespace: str) -> AsyncIterator[RedisState]:
    s = RedisState(redis_server.url, namespace=namespace, reservation_ttl=5)
    yield s
    await s.aclose()


# --- configuration ------------------------------------------------------------------------------


def test_import_dsrs_does_not_import_redis() -> None:
    code = "import sys, dsrs; dsrs.LM('fake:echo'); print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unreachable_at_start_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("DSRS_REDIS_URL", f"redis://:s3cretpass@127.0.0.1:{port}/0")
    with pytest.raises(RedisUnavailableError) as info:
        RedisState.from_env(connect_timeout=0.5)
    message = str(info.value)
    assert "DSRS_REDIS_URL" in message
    assert f"127.0.0.1:{port}" in message
    assert "s3cretpass" not in message and "***" in message


def test_the_password_stays_out_of_reprs(redis_server: RedisServer) -> None:
    from dsrs._redis_state import RedisSettings

    settings = RedisSettings("redis://:hunter2secret@127.0.0.1:1/0")
    assert "hunter2secret" not in repr(settings) and "***" in settings.safe_url
    s = RedisState(redis_server.url, namespace="reprs", fail_open=False)
    try:
        assert repr(s) == f"RedisState({redis_server.url!r}, namespace='reprs', fail_open=False)"
    finally:
        s.close()


def test_missing_url_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSRS_REDIS_URL", raising=False)
    with pytest.raises(RedisUnavailableError, match="DSRS_REDIS_URL"):
        RedisState.from_env()


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="redis://"):
        RedisState("http://127.0.0.1:6379")


def test_env_configures_namespace_and_fail_open(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_REDIS_URL", redis_server.url)
    monkeypatch.setenv("DSRS_REDIS_NAMESPACE", "appA")
    monkeypatch.setenv("DSRS_REDIS_FAIL_OPEN", "1")
    s = RedisState.from_env()
    try:
        assert s.settings.namespace == "appA" and s.fail_open
        assert s.link.key("x") == "appA:x"
    finally:
        s.close()


# --- budgets ------------------------------------------------------------------------------------


async def test_reserve_settle_and_refuse(state: RedisState) -> None:
    b = state.budgets
    limits = {"global": 100, "lane:a": 60}
    r1 = await b.reserve(limits, 50)
    with pytest.raises(dsrs.BudgetExceededError, match="lane:a"):
        await b.reserve(limits, 20)  # lane a has 10 left
    # All or nothing: the refused call held nothing in "global" either.
    assert (await b.status("global")).reserved == 50
    await b.settle(r1, 30)
    await b.settle(r1, 30)  # settling twice counts once
    g, a = await b.status("global"), await b.status("lane:a")
    assert (g.spent, g.reserved, g.limit) == (30, 0, 100)
    assert (a.spent, a.reserved, a.remaining) == (30, 0, 30)
    r2 = await b.reserve({"global": 100, "lane:b": None}, 70)
    await b.settle(r2, 0)  # failed call: released, nothing spent
    assert (await b.status("global")).spent == 30
    snaps = {s.scope: s for s in await b.snapshot()}
    assert set(snaps) == {"global", "lane:a", "lane:b"}
    assert snaps["lane:a"].refused == 1 and snaps["global"].refused == 0


async def test_budgets_are_shared_between_states(redis_server: RedisServer, namespace: str) -> None:
    s1 = RedisState(redis_server.url, namespace=namespace)
    s2 = RedisState(redis_server.url, namespace=namespace)
    other = RedisState(redis_server.url, namespace=namespace + "x")
    try:
        r = await s1.budgets.reserve({"global": 10}, 10)
        with pytest.raises(dsrs.BudgetExceededError):
            await s2.budgets.reserve({"global": 10}, 1)
        await other.budgets.reserve({"global": 10}, 10)  # another namespace, another budget
        await s1.budgets.settle(r, 4)
        await s1.budgets.drain()  # the settle lands in the background; until then the hold counts
        await s2.budgets.reserve({"global": 10}, 6)
    finally:
        for s in (s1, s2, other):
            await s.aclose()


async def test_an_unsettled_hold_expires_after_the_ttl(redis_server: RedisServer, namespace: str) -> None:
    s = RedisState(redis_server.url, namespace=namespace, reservation_ttl=0.4)
    try:
        r = await s.budgets.reserve({"global": 10}, 10)
        await s.budgets.aclose()  # stop renewing, as if the worker had died
        with pytest.raises(dsrs.BudgetExceededError):
            await s.budgets.reserve({"global": 10}, 1)
        await asyncio.sleep(0.5)
        await s.budgets.reserve({"global": 10}, 10)
        snap = (await s.budgets.snapshot(["global"]))[0]
        assert snap.expired == 1 and snap.reserved == 10 and snap.spent == 0
        # Settling the expired hold still counts what was spent.
        await s.budgets.settle(r, 3)
        assert (await s.budgets.status("global")).spent == 3
    finally:
        await s.aclose()


async def test_a_live_call_renews_its_hold(redis_server: RedisServer, namespace: str) -> None:
    s = RedisState(redis_server.url, namespace=namespace, reservation_ttl=0.3)
    try:
        r = await s.budgets.reserve({"global": 10}, 10)
        await asyncio.sleep(0.8)  # more than twice the TTL: renewed every 0.1 s
        assert (await s.budgets.status("global")).reserved == 10
        await s.budgets.settle(r, 10)
        assert (await s.budgets.status("global")).spent == 10
    finally:
        await s.aclose()


async def test_concurrent_reservations_never_overspend(state: RedisState) -> None:
    limit = 1_000

    async def one(i: int) -> int:
        try:
            r = await state.budgets.reserve({"global": limit, f"lane:l{i % 3}": 400}, 7)
        except dsrs.BudgetExceededError:
            return 0
        await asyncio.sleep(0)
        await state.budgets.settle(r, 5)
        return 5

    spent = sum(await asyncio.gather(*(one(i) for i in range(500))))
    g = await state.budgets.status("global")
    assert g.spent == spent <= limit and g.reserved == 0
    for lane in ("l0", "l1", "l2"):
        assert (await state.budgets.status(f"lane:{lane}")).spent <= 400


# --- lane health ----------------------------------------------------------------------------------


async def test_lane_health_is_shared_between_workers(redis_server: RedisServer, namespace: str) -> None:
    w1 = RedisState(redis_server.url, namespace=namespace)
    w2 = RedisState(redis_server.url, namespace=namespace)
    try:
        await w1.lanes.set_status("premium", "cooling", seconds=0.5, reason="RateLimitError")
        h = await w2.lanes.health("premium")
        assert h.status == "cooling" and h.reason == "RateLimitError"
        assert h.until is not None and 0.3 < h.until - time.time() <= 0.5
        assert (await w2.lanes.health("local")).available
        # A shorter retry_after keeps the longer cooldown; a cooldown never downgrades "exhausted".
        await w2.lanes.set_status("premium", "cooling", seconds=0.1, reason="again")
        assert (await w1.lanes.health("premium")).reason == "RateLimitError"
        await asyncio.sleep(0.6)
        assert (await w2.lanes.health("premium")).available
        await w1.lanes.set_status("premium", "exhausted", seconds=None, reason="insufficient_quota")
        await w2.lanes.set_status("premium", "cooling", seconds=5, reason="429")
        h = await w1.lanes.health("premium")
        assert (h.status, h.until, h.reason) == ("exhausted", None, "insufficient_quota")
        await w2.lanes.reset("premium")
        assert (await w1.lanes.health("premium")).available
        # Failure streaks add up across workers; a success anywhere ends them.
        assert await w1.lanes.record_failure("local") == 1
        assert await w2.lanes.record_failure("local") == 2
        assert (await w1.lanes.health("local")).consecutive_failures == 2
        await w1.lanes.record_success("local")
        assert (await w2.lanes.health("local")).consecutive_failures == 0
    finally:
        await w1.aclose()
        await w2.aclose()


async def test_a_rate_limit_in_one_mux_keeps_another_off_the_lane(redis_server: RedisServer, namespace: str) -> None:
    w1 = RedisState(redis_server.url, namespace=namespace)
    w2 = RedisState(redis_server.url, namespace=namespace)
    try:
        limited = dsrs.LM("fake:echo", fail="rate_limit", retry_after=30)
        mux1 = w1.attach(dsrs.LaneMux().add_lane("primary", limited).add_lane("backup", dsrs.LM("fake:ok")))
        first = await mux1.acall("hello")
        assert first.lane == "backup"
        mux2 = w2.attach(
            dsrs.LaneMux().add_lane("primary", dsrs.LM("fake:echo")).add_lane("backup", dsrs.LM("fake:ok"))
        )
        # primary would answer in this worker, but the other worker's 429 cools it for everyone.
        second = await mux2.acall("hello")
        assert second.lane == "backup" and second.text == "ok"
        health = await w2.lanes.health("primary")
        assert health.status == "cooling" and health.until is not None and health.until - time.time() > 25
    finally:
        await w1.aclose()
        await w2.aclose()


async def test_the_shared_cooldown_lasts_retry_after(redis_server: RedisServer, namespace: str) -> None:
    w1 = RedisState(redis_server.url, namespace=namespace)
    w2 = RedisState(redis_server.url, namespace=namespace)
    try:
        limited = dsrs.LM("fake:echo", fail="rate_limit", retry_after=0.6, fail_times=1)
        mux1 = w1.attach(dsrs.LaneMux().add_lane("primary", limited).add_lane("backup", dsrs.LM("fake:ok")))
        assert (await mux1.acall("hello")).lane == "backup"
        mux2 = w2.attach(
            dsrs.LaneMux().add_lane("primary", dsrs.LM("fake:echo")).add_lane("backup", dsrs.LM("fake:ok"))
        )
        assert (await mux2.acall("hello")).lane == "backup"
        await asyncio.sleep(0.7)  # retry_after has passed: every worker may use the lane again
        assert (await mux2.acall("hello")).lane == "primary"
        assert (await mux1.acall("hello")).lane == "primary"
    finally:
        await w1.aclose()
        await w2.aclose()


# --- cache ------------------------------------------------------------------------------------------


async def test_the_cache_is_shared_and_uses_the_local_key(redis_server: RedisServer, namespace: str) -> None:
    lm = dsrs.LM("fake:echo").with_cache(True)
    w1 = RedisState(redis_server.url, namespace=namespace).install()
    try:
        first = await lm.acall("shared cache please")
        assert not first.cache_hit and first.usage.cost_msats
    finally:
        await w1.aclose()
    key = lm.build_request("shared cache please").cache_key()
    w2 = RedisState(redis_server.url, namespace=namespace).install()  # fresh local layer
    try:
        assert await w2.link.client().exists(f"{namespace}:cache:{key}") == 1
        again = await lm.acall("shared cache please")
        assert again.cache_hit and again.usage.cost_msats == 0 and again.text == first.text
        other = await lm.with_temperature(0.5).acall("shared cache please")
        assert not other.cache_hit  # another wire parameter, another entry
        stats = await w2.redis_cache.astats()
        assert stats["entries"] == 2 and stats["hits"] == 1
    finally:
        await w2.aclose()


async def test_cache_ttl_and_size_bound(redis_server: RedisServer, namespace: str) -> None:
    s = RedisState(redis_server.url, namespace=namespace, cache_ttl=0.3, cache_max_entries=3, local_cache_entries=0)
    try:
        cache = s.cache
        for i in range(5):
            await cache.aset(f"k{i}", dsrs.LMResponse(text=f"r{i}"))
            await s.redis_cache.drain()  # writes run in the background; keep their order here
        assert await cache.aget("k0") is None and await cache.aget("k1") is None  # evicted
        assert (await s.redis_cache.astats())["entries"] == 3
        hit = await cache.aget("k4")
        assert hit is not None and hit.text == "r4"
        await asyncio.sleep(0.4)
        assert await cache.aget("k4") is None  # expired
        await cache.aset("k9", dsrs.LMResponse(text="r9"))
        assert (await cache.aget("k9")) is not None  # this process sees its write at once
        assert (await s.redis_cache.astats())["entries"] == 1  # expired ones were dropped
        await s.link.client().set(f"{namespace}:cache:bad", b"{not json")
        assert await cache.aget("bad") is None  # corrupt entry: a miss
        await cache.aclear()
        assert (await s.redis_cache.astats())["entries"] == 0
    finally:
        await s.aclose()


# --- usage ledger -------------------------------------------------------------------------------------


async def test_the_ledger_counts_calls_per_day_provider_lane(state: RedisState) -> None:
    state.install()
    lm = dsrs.LM("fake:echo").with_cache(True)
    await lm.acall("one two three")  # 3 prompt tokens + 3 completion tokens = 3 + 6 msats
    await lm.acall("one two three")  # cache hit: no cost
    await dsrs.LM("fake:echo").acall("four")  # 1 + 2 msats
    state.ledger.record(
        UsageRecord("fake", "echo", dsrs.LmUsage.from_tokens(2, 2), lane="swarm", timestamp=0.0 + 86400 * 20000)
    )
    assert state.ledger.flush()
    total = state.ledger.total()
    assert total.counts["calls"] == 4 and total.counts["cache_hits"] == 1
    assert total.counts["prompt_tokens"] == 3 + 1 + 2
    assert total.counts["cost_msats"] == 9 + 3
    assert total.counts["unpriced_calls"] == 1
    by_lane = {(r.day, r.lane): r.counts["calls"] for r in state.ledger.summary(by=("day", "lane"))}
    assert by_lane[("2024-10-04", "swarm")] == 1
    assert sum(by_lane.values()) == 4
    # Calls through a LaneMux are counted on the lane that answered.
    mux = state.attach(dsrs.LaneMux().add_lane("first", dsrs.LM("fake:echo", fail="unavailable")))
    mux.add_lane("second", dsrs.LM("fake:echo"))
    await mux.acall("five six")
    assert state.ledger.flush()
    lanes = {r.lane: r.counts for r in state.ledger.summary(by=("lane",))}
    assert lanes["second"]["calls"] == 1 and lanes["second"]["cost_msats"] == 2 + 4
    assert "first" not in lanes  # its failed attempts cost nothing and are not calls


def test_dsrs_usage_cli(
    redis_server: RedisServer, namespace: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dsrs._cli import main

    s = RedisState(redis_server.url, namespace=namespace)
    s.ledger.record(
        UsageRecord(
            "fake", "echo", dsrs.LmUsage.from_tokens(5, 7).with_cost(dsrs.Cost(msats=19)), lane="cheap", timestamp=1.7e9
        )
    )
    s.ledger.flush()
    s.close()
    monkeypatch.setenv("DSRS_REDIS_URL", redis_server.url)
    monkeypatch.setenv("DSRS_REDIS_NAMESPACE", namespace)
    assert main(["usage", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["calls"] == 1 and data["total"]["cost_msats"] == 19
    assert data["rows"][0]["lane"] == "cheap" and data["rows"][0]["day"] == "2023-11-14"
    assert main(["usage"]) == 0
    text = capsys.readouterr().out
    assert "cheap" in text and "19" in text
    monkeypatch.setenv("DSRS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["usage"]) == 6  # unreachable (docs/cli.md)
    assert "DSRS_REDIS_URL" in capsys.readouterr().err


async def test_a_task_reuses_a_fresh_miss_instead_of_asking_again(
    state: RedisState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dsrs._redis_state import cache as redis_cache_module

    calls = []
    real_run = redis_cache_module._GET.run

    async def counting_run(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return await real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redis_cache_module._GET, "run", counting_run)
    cache = state.redis_cache
    assert await cache.aget("k") is None
    assert await cache.aget("k") is None  # LaneMux's check, then the LM's: one round trip
    assert len(calls) == 1
    await cache.aset("k", dsrs.LMResponse(text="v"))
    await cache.drain()
    hit = await cache.aget("k")
    assert hit is not None and hit.text == "v" and len(calls) == 2
    await asyncio.sleep(0.06)
    assert await cache.aget("other") is None
    assert await cache.aget("other") is None
    await asyncio.sleep(0.06)  # a miss is reused only briefly
    assert await cache.aget("other") is None
    assert len(calls) == 4


async def test_large_amounts_and_a_reset_with_holds_out(state: RedisState) -> None:
    big = 10**15 + 7  # beyond what a Lua number prints exactly with %.14g
    r = await state.budgets.reserve({"global": 3 * 10**15, "lane:x": None}, big)
    snap = {s.scope: s for s in await state.budgets.snapshot()}
    assert snap["global"].reserved == big and snap["lane:x"].reserved == big
    assert snap["global"].holds == 1 and snap["lane:x"].holds == 1
    await state.budgets.reset("global")  # a new period while a call is out
    await state.budgets.settle(r, big - 1)
    g, x = await state.budgets.status("global"), await state.budgets.status("lane:x")
    assert (g.spent, g.reserved) == (big - 1, 0)  # never a negative hold
    assert (x.spent, x.reserved) == (big - 1, 0)


def test_a_settle_survives_the_loop_ending_right_after_the_call(redis_server: RedisServer, namespace: str) -> None:
    """``asyncio.run(...)`` cancels tasks still pending when the call returns: the spend still counts."""
    state = RedisState(redis_server.url, namespace=namespace)

    async def one_call() -> None:
        r = await state.budgets.reserve({"global": 100}, 10)
        await state.budgets.settle(r, 7)  # returns at once; the settle is still in flight

    async def totals() -> tuple[int, int]:
        try:
            s = await state.budgets.status("global")
            return s.spent, s.reserved
        finally:
            await state.link.aclose()

    try:
        for _ in range(5):
            asyncio.run(one_call())
        spent, reserved = asyncio.run(totals())
        assert reserved == 0 and spent >= 5 * 7
    finally:
        state.close()


def test_an_evicting_server_is_pointed_out(
    redis_server: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    admin = redis.Redis.from_url(redis_server.url)
    try:
        admin.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level("WARNING", logger="dsrs._redis_state"):
            RedisState(redis_server.url, namespace=namespace).close()
        assert "allkeys-lru" in caplog.text and "noeviction" in caplog.text
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()


async def test_a_huge_count_neither_multiplies_the_ledger_nor_reads_as_an_outage(
    state: RedisState, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = state.ledger
    for _ in range(5):
        ledger.record(UsageRecord("fake", "echo", dsrs.LmUsage.from_tokens(1, 1), lane="a", timestamp=0.0))
    assert ledger.flush()
    # A value past what a counter can hold (HINCRBY would fail inside the batch): the batch is
    # refused whole, nothing of it is applied, and it is not re-queued (which multiplied counts).
    ledger.record(UsageRecord("fake", "echo", dsrs.LmUsage.from_tokens(2**62, 1), lane="a", timestamp=0.0))
    ledger.record(UsageRecord("fake", "echo", dsrs.LmUsage.from_tokens(2**62, 1), lane="a", timestamp=0.0))
    with caplog.at_level("WARNING", logger="dsrs"):
        for _ in range(3):
            ledger.flush()
    assert ledger.total().counts["calls"] == 5
    assert "unreachable" not in caplog.text
    assert "refused a batch" in caplog.text
    for _ in range(2):
        ledger.record(UsageRecord("fake", "echo", dsrs.LmUsage.from_tokens(1, 1), lane="a", timestamp=0.0))
    assert ledger.flush()
    assert ledger.total().counts["calls"] == 7


async def test_a_batch_whose_reply_was_lost_is_not_counted_twice(state: RedisState) -> None:
    ledger = state.ledger
    ledger.record(UsageRecord("fake", "echo", dsrs.LmUsage.from_tokens(3, 4), lane="a", timestamp=0.0))
    assert ledger.flush()
    # Simulate a reply lost after the server applied the batch: the same batch (same id) is re-sent.
    from dsrs._redis_state import ledger as ledger_module

    ledger._unsent = ("same-batch", {("1970-01-01", "fake\ta\techo\tcalls"): 1})
    assert ledger.flush()
    ledger._unsent = ("same-batch", {("1970-01-01", "fake\ta\techo\tcalls"): 1})
    assert ledger.flush()
    assert ledger.total().counts["calls"] == 2  # the first call, plus the batch once
    assert ledger_module._MAX_COUNT == 2**53 - 1
