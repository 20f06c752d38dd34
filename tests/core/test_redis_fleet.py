"""Proofs with several OS processes sharing one real redis-server (started by the fixture).

* 8 processes x 100 concurrent calls under one global budget overspend by 0 msats;
* a worker killed mid-call releases its reservation within the TTL;
* a 429 seen by one process keeps the others off that lane;
* cache hits across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="the dsrs-core[redis] extra is not installed")

import redis

from dsrs._redis_state import RedisState
from dsrs._redis_state.testing import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = textwrap.dedent(
    '''
    """One worker of a fleet: its own process, its own RedisState on the shared server."""
    import asyncio, json, sys, time

    import redis

    import dsrs
    from dsrs._redis_state import RedisState

    args = json.loads(sys.argv[1])
    url, ns, mode = args["url"], args["ns"], args["mode"]


    def barrier() -> None:
        """Start together: check in, then wait for the parent's go."""
        r = redis.Redis.from_url(url)
        r.incr(f"{ns}:test:ready")
        assert r.blpop([f"{ns}:test:go"], timeout=60) is not None
        r.close()


    async def budget() -> dict:
        state = RedisState(url, namespace=ns)
        lm = dsrs.LM("fake:echo", max_tokens=8, delay=0.002)
        # fake:echo costs 1 msat per prompt token + 2 per completion token: 4 + 8 = 12 msats here,
        # so a reservation of 12 msats is an exact upper bound.
        mux = state.attach(dsrs.LaneMux(budget_msats=args["limit"]).add_lane("main", lm, reserve_msats=12))
        barrier()

        async def one(j: int) -> int | None:
            try:
                response = await mux.acall(f"w{args['worker']} c{j} hello there")
            except dsrs.BudgetExceededError:
                return None
            return response.usage.cost_msats

        results = await asyncio.gather(*(one(j) for j in range(args["calls"])))
        await state.aclose()
        spent = [c for c in results if c is not None]
        return {"ok": len(spent), "refused": len(results) - len(spent), "spent": sum(spent)}


    async def hold() -> dict:
        state = RedisState(url, namespace=ns, reservation_ttl=args["ttl"])
        slow = dsrs.LM("fake:echo", delay=600)
        mux = state.attach(dsrs.LaneMux(budget_msats=1000).add_lane("main", slow, reserve_msats=1000))
        await mux.acall("this call never finishes")
        return {}


    async def rate_limited() -> dict:
        state = RedisState(url, namespace=ns)
        primary = dsrs.LM("fake:echo", fail="rate_limit", retry_after=30)
        mux = state.attach(dsrs.LaneMux().add_lane("primary", primary).add_lane("backup", dsrs.LM("fake:ok")))
        response = await mux.acall("hello")
        await state.aclose()
        return {"lane": response.lane}


    async def follower() -> dict:
        state = RedisState(url, namespace=ns)
        primary = dsrs.LM("fake:echo")  # healthy here: only the shared cooldown can keep us off it
        mux = state.attach(dsrs.LaneMux().add_lane("primary", primary).add_lane("backup", dsrs.LM("fake:ok")))
        barrier()
        lanes = [(await mux.acall(f"hi {j}")).lane for j in range(20)]
        await state.aclose()
        return {"lanes": lanes, "primary_calls": primary.provider().calls}


    async def cached() -> dict:
        state = RedisState(url, namespace=ns).install()
        lm = dsrs.LM("fake:echo").with_cache(True)
        response = await lm.acall("the same prompt in every process")
        await state.aclose()
        return {"hit": response.cache_hit, "text": response.text, "cost": response.usage.cost_msats}


    out = asyncio.run({"budget": budget, "hold": hold, "rate_limited": rate_limited,
                       "follower": follower, "cached": cached}[mode]())
    print("RESULT " + json.dumps(out), flush=True)
    '''
)


@pytest.fixture(autouse=True)
def _no_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own DSRS_REDIS_* settings must not change what these tests see."""
    for name in ("DSRS_REDIS_URL", "DSRS_REDIS_NAMESPACE", "DSRS_REDIS_FAIL_OPEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def worker_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "worker.py"
    path.write_text(WORKER)
    return path


@pytest.fixture
def ns() -> str:
    return f"f{uuid.uuid4().hex[:8]}"


def _spawn(script: Path, **args: Any) -> subprocess.Popen[str]:
    # Only dsrs-core's own plugin: the fleet needs nothing else, and other packages cannot disturb it.
    env = {**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning", "DSRS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _result(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err[-3000:]}"
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"worker printed no result:\n{out}\n{err[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def _release(url: str, ns: str, n: int, timeout: float = 90) -> None:
    """Wait for ``n`` workers to check in, then let them all go at once."""
    r = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while int(r.get(f"{ns}:test:ready") or 0) < n:
        assert time.monotonic() < deadline, "workers did not check in"
        time.sleep(0.02)
    r.rpush(f"{ns}:test:go", *["go"] * n)
    r.close()


def test_8_processes_x_100_concurrent_calls_never_overspend(
    redis_server: RedisServer, worker_script: Path, ns: str
) -> None:
    limit, workers, calls = 6_000, 8, 100  # 800 calls of 12 msats would need 9,600
    procs = [
        _spawn(worker_script, url=redis_server.url, ns=ns, mode="budget", limit=limit, worker=w, calls=calls)
        for w in range(workers)
    ]
    _release(redis_server.url, ns, workers)
    results = [_result(p) for p in procs]
    state = RedisState(redis_server.url, namespace=ns)
    try:
        snap = {s.scope: s for s in _run(state, state.budgets.snapshot())}
        total = state.ledger.total()
    finally:
        state.close()
    spent_by_workers = sum(r["spent"] for r in results)
    g = snap["mux:global"]
    overspend = max(0, g.spent - limit)
    assert overspend == 0
    assert g.spent == spent_by_workers == limit  # exact bounds: the whole budget and not 1 msat more
    assert g.reserved == 0 and g.holds == 0
    assert sum(r["ok"] for r in results) == limit // 12
    assert sum(r["refused"] for r in results) == workers * calls - limit // 12
    assert all(r["ok"] + r["refused"] == calls for r in results)
    # The shared ledger saw every call of every process, on its lane.
    assert total.counts["calls"] == limit // 12 and total.counts["cost_msats"] == limit


def test_a_killed_worker_releases_its_reservation_within_the_ttl(
    redis_server: RedisServer, worker_script: Path, ns: str
) -> None:
    ttl = 1.0
    proc = _spawn(worker_script, url=redis_server.url, ns=ns, mode="hold", ttl=ttl)
    state = RedisState(redis_server.url, namespace=ns)

    async def reserved() -> int:
        return int((await state.budgets.status("mux:global")).reserved)

    async def scenario() -> float:
        deadline = time.monotonic() + 60
        while await reserved() != 1000:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never reserved"
            await asyncio.sleep(0.02)
        await asyncio.sleep(2.5 * ttl)  # alive: the worker keeps renewing its hold past the TTL
        assert await reserved() == 1000
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while await reserved() != 0:
            assert time.monotonic() - killed < ttl + 5, "the hold was never released"
            await asyncio.sleep(0.01)
        released = time.monotonic() - killed
        r = await state.budgets.reserve({"mux:global": 1000}, 1000)  # the whole budget is free again
        await state.budgets.settle(r, 0)
        assert (await state.budgets.status("mux:global")).spent == 0  # the killed call spent nothing
        await state.aclose()
        return released

    try:
        released = asyncio.run(scenario())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        state.close()
    # The last renewal was at most TTL/3 before the kill: released between 2/3 TTL and the TTL
    # after it (plus polling slack on a busy machine), i.e. by expiry, not before.
    assert 0.5 * ttl <= released <= ttl + 0.3


def test_a_429_in_one_process_keeps_the_others_off_the_lane(
    redis_server: RedisServer, worker_script: Path, ns: str
) -> None:
    first = _result(_spawn(worker_script, url=redis_server.url, ns=ns, mode="rate_limited"))
    assert first["lane"] == "backup"
    followers = [_spawn(worker_script, url=redis_server.url, ns=ns, mode="follower") for _ in range(3)]
    _release(redis_server.url, ns, 3)
    for result in (_result(p) for p in followers):
        assert result["lanes"] == ["backup"] * 20
        assert result["primary_calls"] == 0


def test_cache_hits_across_processes(redis_server: RedisServer, worker_script: Path, ns: str) -> None:
    first = _result(_spawn(worker_script, url=redis_server.url, ns=ns, mode="cached"))
    assert first["hit"] is False and first["cost"] > 0
    others = [_result(p) for p in [_spawn(worker_script, url=redis_server.url, ns=ns, mode="cached") for _ in range(3)]]
    assert all(o["hit"] is True and o["cost"] == 0 and o["text"] == first["text"] for o in others)
    state = RedisState(redis_server.url, namespace=ns)
    try:
        total = state.ledger.total()
    finally:
        state.close()
    assert total.counts["calls"] == 4 and total.counts["cache_hits"] == 3


def _run(state: RedisState, coro: Any) -> Any:
    """Run one async call of ``state`` in a loop of its own, closing that loop's connections."""

    async def go() -> Any:
        try:
            return await coro
        finally:
            await state.link.aclose()

    return asyncio.run(go())
