"""Batch benchmark (issue 16): ``Predict.abatch`` over a budgeted LaneMux vs ``asyncio.gather`` of raw
aiohttp requests to the same loopback server, same run.

Usage::

    python benchmarks/bench_batch.py             # 10,000 items
    python benchmarks/bench_batch.py --quick     # 2,000 items

Both sides send the same JSON body to ``_server.BenchServer`` (its own process) with the same
number of requests in flight (``--concurrency``; the raw side bounds it with the connector's
limit). Printed: wall time, items/s, the throughput ratio dsrs/raw and dsrs's overhead per item
(µs: the difference of the two wall times per item; both clients are bound by their event loop).
Rounds alternate.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import BenchServer


async def run(url: str, n: int, concurrency: int, rounds: int) -> dict[str, list[float]]:
    import aiohttp

    import dsrs
    from dsrs.wire import openai_chat

    class QA(dsrs.Signature):
        """Answer briefly."""

        question: str = dsrs.InputField()
        answer: str = dsrs.OutputField()

    mux = dsrs.LaneMux(budget_msats=10**12, reserve_msats=1).add_lane("main", dsrs.LM("m", base_url=url))
    predict = dsrs.Predict(QA, lm=mux)
    rows = [{"question": f"question {i}"} for i in range(n)]
    formatted = dsrs.ChatAdapter().format(QA, rows[0])
    body = openai_chat.encode_body(mux.lane("main").lm.build_request(formatted.messages, max_tokens=4096))
    chat = url + "/v1/chat/completions"

    async def raw_batch() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def one() -> Any:
                async with session.post(chat, json=body) as resp:
                    return await resp.json()

            out = await asyncio.gather(*(one() for _ in range(n)))
            assert len(out) == n

    async def dsrs_batch() -> None:
        out = await predict.abatch(rows, concurrency=concurrency, progress=False)
        assert len(out) == n and all(p.answer for p in out)

    times: dict[str, list[float]] = {"raw aiohttp gather": [], "Predict.abatch via LaneMux (budget)": []}
    await raw_batch()  # warm up both
    await predict.abatch(rows[:200], concurrency=concurrency, progress=False)
    for r in range(rounds):
        order = list(times) if r % 2 == 0 else list(reversed(times))
        for name in order:
            t0 = time.perf_counter()
            await (raw_batch() if name.startswith("raw") else dsrs_batch())
            times[name].append(time.perf_counter() - t0)
    status = mux.budget_status()["global"]
    assert status.reserved == 0, "a batch left budget holds behind"
    await mux.aclose()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    n, rounds = (2_000, 2) if args.quick else (10_000, 3)
    with BenchServer(words=8) as srv:
        times = asyncio.run(run(srv.url, n, args.concurrency, rounds))
    raw = statistics.median(times["raw aiohttp gather"])
    print(f"{n} items, {args.concurrency} in flight, median of {rounds} rounds")
    print(f"{'client':38s} {'wall s':>8s} {'items/s':>9s}")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:38s} {med:8.2f} {n / med:9.0f}")
    ours = statistics.median(times["Predict.abatch via LaneMux (budget)"])
    print(f"throughput ratio dsrs/raw: {raw / ours:.2f}x")
    # The client's event loop is the bottleneck on both sides, so the wall-time difference per item is
    # dsrs's own work per item (adapter, mux, budget, usage records).
    print(f"dsrs's work per item: {(ours - raw) / n * 1e6:.0f} µs (wall difference / items)")


if __name__ == "__main__":
    main()
