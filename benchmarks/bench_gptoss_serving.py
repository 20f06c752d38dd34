"""Benchmark local serving: engine settings on an idle and a busy machine, and the auto-started lane
under many concurrent calls against the engine started with the best settings, in the same run.

    python benchmarks/bench_gptoss_serving.py sweep  [--tokens 96] [--busy 2]
    python benchmarks/bench_gptoss_serving.py lane   [--tokens 96] [--prompts 16] [--inflight 8] [--rounds 3]

* ``sweep``: the prebuilt engine (xllamacpp) with threads x poll x slots, each measured sequentially
  (one request at a time) and with ``--inflight`` concurrent requests, first on the machine as it is,
  then with ``--busy`` CPU-bound processes running (the case that motivated cores - 1 threads).
  Direct HTTP, ``ignore_eos``: every request generates exactly ``--tokens`` tokens.
* ``lane``: ``--prompts`` prompts at ``--inflight`` in flight through ``dsrs.LM("gptoss:...")`` on a
  server the lane auto-started with its defaults, against the same prompts sent directly (http.client
  threads) to engines started with each candidate setting (a thread per core or one fewer, 4 or 8
  slots), all in the same run, order rotating per round. The figure is the lane's median aggregate
  tokens/s over the best candidate's (target >= 0.9).

Model: SmolLM2-135M-Instruct from ``dsrs-gptoss install``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROMPT = "Write a short story about a lighthouse keeper number {i}."


def _body(i: int, tokens: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": PROMPT.format(i=i)}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "temperature": 0.8,
        "seed": i,
    }


def _post(port: int, body: dict[str, Any]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"content-type": "application/json"})
    data = json.loads(conn.getresponse().read())
    conn.close()
    return int(data["usage"]["completion_tokens"])


def direct_run(port: int, prompts: int, inflight: int, tokens: int) -> float:
    """Aggregate generated tokens/s for ``prompts`` requests with ``inflight`` at a time."""
    todo = list(range(prompts))
    lock = threading.Lock()
    total = 0

    def worker() -> None:
        nonlocal total
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            n = _post(port, _body(i, tokens))
            with lock:
                total += n

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(inflight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - t0)


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


@contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` CPU-bound processes for the duration (another workload on the machine)."""
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(5)


def sweep(args: argparse.Namespace) -> int:
    from dsrs_gptoss import testing
    from dsrs_gptoss.server import Engine, LlamaServer

    model = testing.smollm2()
    cores = os.cpu_count() or 2
    configs = []
    for threads in sorted({max(1, cores - 1), cores}):
        for poll in (50, 0):
            for slots in (1, 4, 8):
                configs.append((threads, poll, slots))
    print(f"# sweep: SmolLM2, {args.tokens} tokens/request, {cores} cores, xllamacpp; tokens/s aggregate")
    print(f"situation  threads poll slots  sequential  {args.inflight}-in-flight")
    for situation in ("as-is", f"busy({args.busy})"):
        for threads, poll, slots in configs:
            extra = ["--poll", str(poll), "--poll-batch", str(poll)]
            srv = LlamaServer(
                model, engine=Engine.prebuilt(), threads=threads, parallel=slots, ctx_size=1024, extra_args=extra
            )
            with srv:
                direct_run(srv.port, 2, 1, 8)  # warm-up
                ctx = busy(args.busy) if situation != "as-is" else _null()
                with ctx:
                    seq = direct_run(srv.port, 3, 1, args.tokens)
                    par = direct_run(srv.port, args.inflight * 2, min(slots, args.inflight) or 1, args.tokens)
            load = os.getloadavg()[0]
            print(f"{situation:10} {threads:7} {poll:4} {slots:5}  {seq:10.1f}  {par:12.1f}   load {load:.1f}")
            sys.stdout.flush()
    return 0


@contextmanager
def _null() -> Iterator[None]:
    yield


def lane(args: argparse.Namespace) -> int:
    import dsrs
    from dsrs_gptoss import server as srv
    from dsrs_gptoss import testing
    from dsrs_gptoss.server import Engine, LlamaServer

    model = testing.smollm2()
    os.environ["LLAMA_MODEL_PATH"] = str(model)
    os.environ["GPTOSS_ENGINE"] = "xllamacpp"
    cores = os.cpu_count() or 2
    base = f"http://127.0.0.1:{srv.free_port()}"
    lm = dsrs.LM("gptoss:smollm2", base_url=base, max_tokens=args.tokens, temperature=0.8, ignore_eos=True)
    lm.call("warm up", max_tokens=4)  # auto-starts the lane's server with its defaults
    started = lm.provider().handle.server  # type: ignore[attr-defined]
    assert started is not None
    print(f"# lane server (auto-started defaults): {' '.join(started.command()[3:-2])}")
    # Candidates for "the best settings for this machine": a thread per core or one fewer, 4 or 8 slots.
    candidates = {
        (threads, slots): LlamaServer(model, engine=Engine.prebuilt(), threads=threads, parallel=slots, ctx_size=1024)
        for threads in sorted({max(1, cores - 1), cores})
        for slots in (4, 8)
    }

    async def through_lane() -> float:
        sem = asyncio.Semaphore(args.inflight)

        async def one(i: int) -> int:
            async with sem:
                r = await lm.acall(PROMPT.format(i=i), seed=i)
                return r.usage.completion_tokens

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(i) for i in range(args.prompts)))
        return sum(counts) / (time.perf_counter() - t0)

    results: dict[Any, list[float]] = {"lane": [], **{k: [] for k in candidates}}
    for server in candidates.values():
        server.start()
        direct_run(server.port, 2, 1, 8)
    try:
        for r in range(args.rounds):
            order: list[Any] = ["lane", *candidates]
            order = order[r % len(order) :] + order[: r % len(order)]  # rotate who goes first
            for which in order:
                if which == "lane":
                    results["lane"].append(asyncio.run(through_lane()))
                else:
                    port = candidates[which].port
                    results[which].append(direct_run(port, args.prompts, args.inflight, args.tokens))
            print(f"# round {r + 1}: " + ", ".join(f"{k}: {v[-1]:.1f}" for k, v in results.items()), flush=True)
    finally:
        for server in candidates.values():
            server.stop()
        srv.stop_auto_started_servers()
    medians = {k: statistics.median(v) for k, v in results.items()}
    best_key = max(candidates, key=lambda k: medians[k])
    lane_med, best_med = medians["lane"], medians[best_key]
    print(f"{args.prompts} prompts x {args.tokens} tokens, {args.inflight} in flight, {args.rounds} rounds (medians):")
    print(f"  lane, dsrs.LM acall x {args.inflight} concurrent, auto-started defaults: {lane_med:6.1f} tokens/s")
    for threads, slots in sorted(candidates):
        print(f"  engine direct, --threads {threads} --parallel {slots}: {medians[(threads, slots)]:6.1f} tokens/s")
    print(f"ratio lane / best engine (--threads {best_key[0]} --parallel {best_key[1]}): {lane_med / best_med:.2f}")
    print(f"  (target >= 0.9)   load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--tokens", type=int, default=96)
    s.add_argument("--inflight", type=int, default=8)
    s.add_argument("--busy", type=int, default=2)
    s.set_defaults(func=sweep)
    ln = sub.add_parser("lane")
    ln.add_argument("--tokens", type=int, default=96)
    ln.add_argument("--prompts", type=int, default=16)
    ln.add_argument("--inflight", type=int, default=8)
    ln.add_argument("--rounds", type=int, default=3)
    ln.set_defaults(func=lane)
    args = ap.parse_args()
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
