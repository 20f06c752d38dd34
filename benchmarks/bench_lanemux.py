"""LaneMux / Predict benchmark (issue 3): framework overhead, throughput and auto_detect wall time.

Usage::

    .venv/bin/python benchmarks/bench_lanemux.py            # full run (about a minute)
    .venv/bin/python benchmarks/bench_lanemux.py --quick    # short run

Every figure is compared with a baseline measured in the same run:

1. ``await Predict(QA).aforward(question=...)`` through a two-lane ``LaneMux`` (first lane healthy)
   vs a raw aiohttp request with the *same* JSON body (``session.post(url, json=body)`` then
   ``await resp.json()``) to the same loopback server: p50 of sequential calls, interleaved in
   blocks. Target: p50 overhead <= 150 µs.
2. 256 concurrent ``Predict.aforward`` vs 256 concurrent raw aiohttp requests: requests per second,
   median of interleaved bursts. Target: >= 0.6x raw aiohttp.
3. ``LaneMux.auto_detect(timeout=T)`` over six registered providers, three answering ``GET /models``
   and three whose server accepts connections but never answers: wall time vs ``T``.
   Target: <= T + 100 ms.

The chat server is ``_server.BenchServer`` (a separate process); the silent servers are listening
sockets in this process that never accept. On glibc the script runs itself again with malloc's
thresholds fixed (``_alloc.py``: otherwise a process's allocation history decides whether every
response buffer costs three system calls); ``DSRS_BENCH_MALLOC=native`` runs without.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _alloc import pin_allocator  # noqa: E402
from _server import BenchServer  # noqa: E402

TARGET_OVERHEAD_US = 150.0
TARGET_RPS_RATIO = 0.6
TARGET_DETECT_SLACK_MS = 100.0
QUESTION = "Say hello to the benchmark, briefly."

Call = Callable[[], Awaitable[str]]


def make_signature() -> Any:
    import dsrs

    class QA(dsrs.Signature):
        """Answer briefly."""

        question: str = dsrs.InputField()
        answer: str = dsrs.OutputField()

    return QA


async def clients(url: str) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    import aiohttp

    import dsrs

    qa_sig = make_signature()
    # Lane "backup" is never used while "main" is healthy; it is there so routing has a choice.
    mux = (
        dsrs.LaneMux()
        .add_lane("main", dsrs.LM("m", base_url=url), tier="local")
        .add_lane("backup", dsrs.LM("m", base_url=url + "/"), tier="local")
    )
    predict = dsrs.Predict(qa_sig, lm=mux)
    formatted = dsrs.ChatAdapter().format(qa_sig, {"question": QUESTION})
    # The raw client sends exactly the body dsrs sends for this prediction.
    from dsrs.wire import openai_chat

    body = openai_chat.encode_body(mux.lane("main").lm.build_request(formatted.messages))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    chat = url + "/v1/chat/completions"

    async def raw() -> str:
        async with session.post(chat, json=body) as resp:
            data = await resp.json()
        return str(data["choices"][0]["message"]["content"])

    async def dsrs_predict() -> str:
        pred = await predict.aforward(question=QUESTION)
        return str(pred.answer)

    async def close() -> None:
        from dsrs.transport import get_transport

        await session.close()
        await mux.aclose()
        await get_transport().aclose()

    return {"raw aiohttp": raw, "Predict via 2-lane LaneMux": dsrs_predict}, close


async def sequential(calls: dict[str, Call], n: int, block: int = 25) -> dict[str, list[float]]:
    clock = time.perf_counter_ns
    out: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for b in range(max(1, n // block)):
        for name in names[b % len(names) :] + names[: b % len(names)]:
            call, samples = calls[name], out[name]
            for _ in range(block):
                t0 = clock()
                await call()
                samples.append((clock() - t0) / 1000)
    return out


async def burst(call: Call, total: int, conc: int) -> float:
    remaining = [total]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return total / (time.perf_counter() - t0)


async def bench_calls(args: argparse.Namespace) -> dict[str, Any]:
    with BenchServer(words=8) as srv:
        calls, close = await clients(srv.url)
        try:
            for name, call in calls.items():
                text = await call()
                if not text.startswith("w0"):
                    raise RuntimeError(f"{name}: unexpected answer {text!r}")
            for _ in range(args.warmup):
                for call in calls.values():
                    await call()
            seq = await sequential(calls, args.seq)
            rps: dict[str, list[float]] = {name: [] for name in calls}
            for call in calls.values():
                await burst(call, args.conc * 2, args.conc)  # open the connections
            names = list(calls)
            for b in range(args.bursts):
                for name in names[b % 2 :] + names[: b % 2]:
                    rps[name].append(await burst(calls[name], args.total, args.conc))
        finally:
            await close()
    return {"seq": seq, "rps": rps}


# --- auto_detect -----------------------------------------------------------------------------------


def silent_server() -> socket.socket:
    """A socket that accepts connections (kernel backlog) and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


async def bench_detect(args: argparse.Namespace) -> dict[float, dict[str, list[float]]]:
    import dsrs
    from dsrs.plugins import hookimpl
    from dsrs.testing import isolated_plugins
    from dsrs.wire import OpenAICompatibleProvider

    silent = [silent_server() for _ in range(3)]
    results: dict[float, dict[str, list[float]]] = {}
    described = ""
    with BenchServer(words=8) as srv:
        urls = [srv.url] * 3 + [f"http://127.0.0.1:{s.getsockname()[1]}" for s in silent]
        specs = []
        for i, (url, tier) in enumerate(zip(urls, ("premium", "balanced", "local") * 2, strict=True)):
            cls = type(
                f"Bench{i}",
                (OpenAICompatibleProvider,),
                {"default_base_url": url, "api_key_env": (), "base_url_env": ()},
            )
            specs.append(dsrs.ProviderSpec(f"bench{i}", cls, tier=tier))  # type: ignore[arg-type]

        class Six:
            def __init__(self, live_only: bool) -> None:
                self.live_only = live_only

            @hookimpl
            def dsrs_register_providers(self, register: Callable[[dsrs.ProviderSpec], None]) -> None:
                for spec in specs[:3] if self.live_only else specs:
                    register(spec)

        for timeout in args.timeouts:
            walls: dict[str, list[float]] = {"six (3 silent)": [], "three live only": []}
            for live_only, key in ((False, "six (3 silent)"), (True, "three live only")):
                with isolated_plugins(Six(live_only)):
                    for _ in range(args.detect_runs):
                        t0 = time.perf_counter()
                        mux = await dsrs.LaneMux.auto_detect(timeout=timeout)
                        walls[key].append((time.perf_counter() - t0) * 1000)
                        if mux.lane_names != ("bench0", "bench1", "bench2"):
                            raise RuntimeError(f"unexpected lanes {mux.lane_names}\n{mux.describe()}")
                        if not live_only:
                            described = mux.describe()
            results[timeout] = walls
        print(described)
        print()
    for s in silent:
        s.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(pin_allocator())  # the same allocator behaviour in every run (see _alloc)
    args.seq = 400 if args.quick else 3000
    args.warmup = 50 if args.quick else 200
    args.conc = 256
    args.total = 2048 if args.quick else 8192
    args.bursts = 4 if args.quick else 8
    args.timeouts = (0.5,) if args.quick else (0.5, 1.0)
    args.detect_runs = 3 if args.quick else 5

    calls = asyncio.run(bench_calls(args))
    detect = asyncio.run(bench_detect(args))

    ok = True
    seq, rps = calls["seq"], calls["rps"]
    raw_p50 = statistics.median(seq["raw aiohttp"])
    print(f"{'client':<28} {'p50 µs':>8} {'p90 µs':>8} {'rps @256':>9}")
    for name in seq:
        s = sorted(seq[name])
        print(f"{name:<28} {statistics.median(s):8.1f} {s[int(0.9 * len(s))]:8.1f} {statistics.median(rps[name]):9.0f}")
    pred_p50 = statistics.median(seq["Predict via 2-lane LaneMux"])
    overhead = pred_p50 - raw_p50
    ratio = statistics.median(rps["Predict via 2-lane LaneMux"]) / statistics.median(rps["raw aiohttp"])
    ok_over, ok_rps = overhead <= TARGET_OVERHEAD_US, ratio >= TARGET_RPS_RATIO
    ok = ok_over and ok_rps
    print(
        f"\nPredict p50 overhead vs raw aiohttp: {overhead:.0f} µs ({pred_p50 / raw_p50:.2f}x) "
        f"(target <= {TARGET_OVERHEAD_US:g} µs): {'PASS' if ok_over else 'FAIL'}\n"
        f"256-concurrent throughput: {ratio:.2f}x raw aiohttp (target >= {TARGET_RPS_RATIO}): "
        f"{'PASS' if ok_rps else 'FAIL'}\n"
    )
    for timeout, walls in detect.items():
        six = statistics.median(walls["six (3 silent)"])
        live = statistics.median(walls["three live only"])
        limit = timeout * 1000 + TARGET_DETECT_SLACK_MS
        passed = max(walls["six (3 silent)"]) <= limit
        ok = ok and passed
        print(
            f"auto_detect timeout {timeout:g}s: six providers (3 silent) median {six:.0f} ms, "
            f"max {max(walls['six (3 silent)']):.0f} ms; three live only {live:.0f} ms; "
            f"{six / (timeout * 1000):.2f}x the timeout (target <= {limit:.0f} ms): {'PASS' if passed else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
