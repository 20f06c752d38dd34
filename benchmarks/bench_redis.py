"""Redis shared state (issue 8): what it adds to a call, and a shared cache hit vs a SQLite hit.

Usage::

    .venv/bin/python benchmarks/bench_redis.py            # full run (~30 s)
    .venv/bin/python benchmarks/bench_redis.py --quick    # short run
    .venv/bin/python benchmarks/bench_redis.py --url redis://127.0.0.1:6379/0   # an existing server
    .venv/bin/python benchmarks/bench_redis.py --json

Starts its own redis-server on a free loopback port through scripts/redis-server.sh (unless
``--url``). Measured in one process and one event loop, p50/p90 of sequential iterations, the
in-process and Redis variants interleaved round by round so machine drift hits both alike:

1. **check** — the per-call budget + cache check: a cache lookup (miss), reserving the call's
   msats on the global and the lane budget, settling it. Redis (``RedisCache`` without its
   in-process front, ``RedisBudgetStore``: 3 round trips) vs in-process (``MemoryCache``,
   ``InProcessBudgetStore``). Added latency = Redis p50 - in-process p50. Target: <= 0.5 ms.
   Baseline of the same run: one plain ``GET`` round trip on the same client, so a loaded
   machine's figures can be read as "so many round trips".
2. **call** — a whole ``LaneMux.acall`` on ``fake:echo`` with a budget and the cache on (a new
   prompt each time), with ``RedisState.attach`` vs the in-process defaults: the same difference
   seen from the caller (lane health, budget, both cache lookups, the cache store, the ledger).
3. **hit** — one cache hit: ``RedisCache`` (no front layer), ``SQLiteCache`` (a file in a temp
   dir), ``MemoryCache``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

TARGET_CHECK_P50_MS = 0.5


def _pct(samples: list[int], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0  # ns -> µs


async def _time(fn: Callable[[int], Awaitable[Any]], n: int, offset: int) -> list[int]:
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        await fn(offset + i)
        out.append(time.perf_counter_ns() - t0)
    return out


async def _interleave(
    variants: dict[str, Callable[[int], Awaitable[Any]]], rounds: int, per_round: int, warmup: int
) -> dict[str, list[int]]:
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for fn in variants.values():
        await _time(fn, warmup, 10_000_000)
    for r in range(rounds):
        for name, fn in variants.items():
            samples[name] += await _time(fn, per_round, r * per_round)
    return samples


def _summary(samples: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    return {
        name: {"p50_us": _pct(s, 0.5), "p90_us": _pct(s, 0.9), "mean_us": statistics.fmean(s) / 1000.0, "n": len(s)}
        for name, s in samples.items()
    }


async def bench(url: str, rounds: int, per_round: int, warmup: int) -> dict[str, Any]:
    import dsrs
    from dsrs._budget import InProcessBudgetStore
    from dsrs._cache import MemoryCache, set_cache
    from dsrs._cache.sqlite import SQLiteCache
    from dsrs._redis_state import RedisState

    ns = f"bench{uuid.uuid4().hex[:6]}"
    state = RedisState(url, namespace=ns, local_cache_entries=0)
    limits = {"mux:global": 10**15, "mux:lane:main": None}
    memory, local_budgets = MemoryCache(), InProcessBudgetStore()

    # 1. the budget + cache check of one call
    async def check_redis(i: int) -> None:
        await state.redis_cache.aget(f"miss-{i}")
        r = await state.budgets.reserve(limits, 12)
        await state.budgets.settle(r, 12)

    async def check_local(i: int) -> None:
        await memory.aget(f"miss-{i}")
        r = await local_budgets.reserve(limits, 12)
        await local_budgets.settle(r, 12)

    client = state.link.client()

    async def round_trip(i: int) -> None:
        await client.get("bench-rt")

    check = _summary(
        await _interleave(
            {"redis": check_redis, "in-process": check_local, "round-trip": round_trip}, rounds, per_round, warmup
        )
    )

    # 2. a whole LaneMux call, budget and cache on, a new prompt each time
    lm = dsrs.LM("fake:echo", max_tokens=8).with_cache(True)
    local_mux = dsrs.LaneMux(budget_msats=10**15).add_lane("main", lm)
    redis_mux = state.attach(dsrs.LaneMux(budget_msats=10**15).add_lane("main", lm))
    local_cache = MemoryCache(1 << 20)

    async def call_redis(i: int) -> None:
        set_cache(state.cache)
        await redis_mux.acall(f"redis prompt {i}")

    async def call_local(i: int) -> None:
        set_cache(local_cache)
        await local_mux.acall(f"local prompt {i}")

    call = _summary(await _interleave({"redis": call_redis, "in-process": call_local}, rounds, per_round // 2, warmup))
    state.uninstall()

    # 3. one cache hit
    response = await lm.acall("a cached answer")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteCache(Path(tmp) / "bench.sqlite3")
        for backend in (state.redis_cache, sqlite, memory):
            await backend.aset("hit", response)

        async def hit_redis(i: int) -> None:
            assert await state.redis_cache.aget("hit") is not None

        async def hit_sqlite(i: int) -> None:
            assert await sqlite.aget("hit") is not None

        async def hit_memory(i: int) -> None:
            assert await memory.aget("hit") is not None

        hit = _summary(
            await _interleave(
                {"redis": hit_redis, "sqlite": hit_sqlite, "memory": hit_memory}, rounds, per_round, warmup
            )
        )
        close = getattr(sqlite, "close", None)
        if close is not None:
            close()

    await state.redis_cache.aclear()
    for scope in ("mux:global", "mux:lane:main"):
        await state.budgets.reset(scope)
    state.ledger.clear()
    await state.aclose()
    added_check = check["redis"]["p50_us"] - check["in-process"]["p50_us"]
    added_call = call["redis"]["p50_us"] - call["in-process"]["p50_us"]
    return {
        "check": check,
        "call": call,
        "hit": hit,
        "added_check_p50_ms": added_check / 1000.0,
        "added_call_p50_ms": added_call / 1000.0,
        "hit_ratio_redis_vs_sqlite": hit["redis"]["p50_us"] / hit["sqlite"]["p50_us"],
        "check_in_round_trips": check["redis"]["p50_us"] / check["round-trip"]["p50_us"],
        "call_added_in_round_trips": added_call / check["round-trip"]["p50_us"],
        "target_check_p50_ms": TARGET_CHECK_P50_MS,
        "meets_target": added_check / 1000.0 <= TARGET_CHECK_P50_MS,
        "python": sys.version.split()[0],
    }


def _report(r: dict[str, Any]) -> str:
    lines = ["Redis shared state (loopback), µs per operation:", ""]
    lines.append(f"{'what':<44} {'p50':>9} {'p90':>9}")
    rows = [
        ("check: cache miss + reserve + settle, Redis", r["check"]["redis"]),
        ("check: same, in-process", r["check"]["in-process"]),
        ("one Redis round trip (GET), baseline", r["check"]["round-trip"]),
        ("LaneMux.acall with RedisState", r["call"]["redis"]),
        ("LaneMux.acall in-process", r["call"]["in-process"]),
        ("cache hit: Redis (shared)", r["hit"]["redis"]),
        ("cache hit: SQLite file", r["hit"]["sqlite"]),
        ("cache hit: memory", r["hit"]["memory"]),
    ]
    for name, s in rows:
        lines.append(f"{name:<44} {s['p50_us']:>9.1f} {s['p90_us']:>9.1f}")
    lines += [
        "",
        f"added by Redis to the budget + cache check: p50 {r['added_check_p50_ms']:.3f} ms "
        f"(target <= {r['target_check_p50_ms']} ms: {'met' if r['meets_target'] else 'NOT met'})",
        f"  = {r['check_in_round_trips']:.1f} plain GET round trips of this run",
        f"added by Redis to a whole LaneMux call: p50 {r['added_call_p50_ms']:.3f} ms"
        f" (= {r['call_added_in_round_trips']:.1f} round trips)",
        f"shared Redis hit / SQLite hit (p50): {r['hit_ratio_redis_vs_sqlite']:.2f}x",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=None, help="use this Redis instead of starting one")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    rounds, per_round, warmup = (3, 200, 50) if args.quick else (10, 500, 200)
    server = None
    url = args.url
    if url is None:
        from dsrs._redis_state.testing import RedisServer

        server = RedisServer().start()
        url = server.url
    try:
        result = asyncio.run(bench(url, rounds, per_round, warmup))
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(result, indent=2) if args.json else _report(result))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
