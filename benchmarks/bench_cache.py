"""Response-cache benchmark (issue 3): hit latency of the memory and SQLite layers.

Usage::

    .venv/bin/python benchmarks/bench_cache.py            # full run
    .venv/bin/python benchmarks/bench_cache.py --quick    # short run

Figures (p50 / p99 of sequential awaits, in µs):

* ``MemoryCache.aget`` and ``SQLiteCache.aget`` of a present key (the backend alone);
* ``LM.acomplete`` of a cached request through the memory layer and through SQLite alone (the
  whole hit path users see: key hashing, lookup, usage marked as a hit);
* baseline, same run: ``LM.acomplete`` of an uncached request to a loopback server in another
  process (``_server.BenchServer``) — the call a hit saves.

Targets: memory hit <= 20 µs, SQLite hit <= 300 µs. The SQLite file is in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _server import BenchServer  # noqa: E402

TARGET_MEMORY_US = 20.0
TARGET_SQLITE_US = 300.0


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        await fn()
        out.append((clock() - t0) / 1000)
    return out


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    import dsrs
    from dsrs._cache import MemoryCache, set_cache
    from dsrs._cache.sqlite import SQLiteCache

    n = args.n
    results: dict[str, list[float]] = {}
    with BenchServer(words=8) as srv, tempfile.TemporaryDirectory() as tmp:
        lm = dsrs.LM("m", base_url=srv.url)
        cached_lm = lm.with_cache(True)
        request = cached_lm.build_request("Say hello to the benchmark, briefly.")
        response = await lm.acomplete(request)  # warm the connection, and something to store

        memory = MemoryCache()
        sqlite = SQLiteCache(Path(tmp) / "bench.sqlite3")
        key = request.cache_key()
        memory.set(key, response)
        sqlite.set(key, response)
        for i in range(5000):  # a realistic table, not a single row
            sqlite.set(f"filler-{i}", response)

        async def mem_get() -> None:
            assert await memory.aget(key) is not None

        async def sql_get() -> None:
            assert await sqlite.aget(key) is not None

        async def lm_hit() -> None:
            assert (await cached_lm.acomplete(request)).cache_hit

        async def real_call() -> None:
            await lm.acomplete(request)

        rounds = 5
        for name in ("memory aget", "sqlite aget", "LM hit (memory)", "LM hit (sqlite)", "LM call, no cache"):
            results[name] = []
        for _ in range(rounds):  # interleaved so machine noise hits every figure alike
            results["memory aget"] += await timed(mem_get, n)
            results["sqlite aget"] += await timed(sql_get, n)
            set_cache(memory)
            results["LM hit (memory)"] += await timed(lm_hit, n)
            set_cache(sqlite)
            results["LM hit (sqlite)"] += await timed(lm_hit, n)
            set_cache(None)
            results["LM call, no cache"] += await timed(real_call, max(50, n // 10))
        await lm.aclose()
        from dsrs.transport import get_transport

        await get_transport().aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None, help="samples per figure per round")
    args = parser.parse_args()
    args.n = args.n or (400 if args.quick else 4000)
    results = asyncio.run(run(args))
    base = statistics.median(results["LM call, no cache"])
    print(f"{'figure':<22} {'p50 µs':>9} {'p99 µs':>9}  {'vs real call':>12}")
    for name, samples in results.items():
        p50 = statistics.median(samples)
        print(f"{name:<22} {p50:9.1f} {pct(samples, 0.99):9.1f}  {p50 / base:11.3f}x")
    mem = statistics.median(results["LM hit (memory)"])
    sql = statistics.median(results["LM hit (sqlite)"])
    ok_mem, ok_sql = mem <= TARGET_MEMORY_US, sql <= TARGET_SQLITE_US
    print(
        f"\nmemory hit (LM path) p50 {mem:.1f} µs (target <= {TARGET_MEMORY_US:g}): {'PASS' if ok_mem else 'FAIL'}\n"
        f"sqlite hit (LM path) p50 {sql:.1f} µs (target <= {TARGET_SQLITE_US:g}): {'PASS' if ok_sql else 'FAIL'}\n"
        f"a memory hit is {base / mem:.0f}x faster than the real loopback call it replaces"
    )
    return 0 if ok_mem and ok_sql else 1


if __name__ == "__main__":
    sys.exit(main())
