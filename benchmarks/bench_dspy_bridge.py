"""DSPy bridge benchmark (issue 16 item 6): what ``dsrs_dspy.LM`` adds to a call, and DSPy's own engine.

Usage::

    .venv/bin/python benchmarks/bench_dspy_bridge.py            # full run (about a minute)
    .venv/bin/python benchmarks/bench_dspy_bridge.py --quick    # short run

All clients talk to the same loopback OpenAI-wire server (``_server.BenchServer``, its own process),
one process, sequential calls, variants interleaved in blocks so load spikes hit all alike:

* baseline: ``await dsrs.LM(...).acall(messages)`` — dsrs alone;
* ``await AsyncDsrsEngine(lm).complete(request)`` — the bridge's own translation, without DSPy;
* ``await dsrs_dspy.LM(lm).acall(request)`` — the same call through DSPy's LM layer (prepare,
  execute, history, usage) and the bridge's engine;
* the same through a one-lane ``LaneMux`` (lane health, spend bookkeeping);
* context: DSPy's native engine, ``dspy.LM("openai/bench-model", api_base=...)`` (lm15), on the
  same server — what a DSPy program pays without dsrs.

Per variant: p50 µs per call, the difference and the ratio to the baseline. DSPy's own cache is off
for every DSPy variant (``cache=False``) and nothing retries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _server import BenchServer  # noqa: E402

PROMPT = "Say eight words."


async def _measure(calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int, block: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for fn in calls.values():  # warm every client: connections, imports, lazy objects
        for _ in range(20):
            await fn()
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(block):
                t0 = time.perf_counter_ns()
                await fn()
                samples[name].append((time.perf_counter_ns() - t0) / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def _clients(url: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    import dspy
    from dspy import lm15

    import dsrs
    import dsrs_dspy

    lm = dsrs.LM("openai-compatible:bench-model", base_url=f"{url}/v1")
    bridged = dsrs_dspy.LM(lm, model="bench")
    engine = dsrs_dspy.AsyncDsrsEngine(lm)
    mux = dsrs.LaneMux().add_lane("only", dsrs.LM("openai-compatible:bench-model", base_url=f"{url}/v1"))
    bridged_mux = dsrs_dspy.LM(mux, model="bench-mux")
    request = lm15.Request(model="bench", messages=(lm15.Message.user(PROMPT),))
    mux_request = lm15.Request(model="bench-mux", messages=(lm15.Message.user(PROMPT),))
    clients: dict[str, Callable[[], Awaitable[Any]]] = {
        "dsrs LM.acall (baseline)": lambda: lm.acall(PROMPT),
        "AsyncDsrsEngine.complete(Request) alone": lambda: engine.complete(request),
        "dsrs_dspy.LM(LM).acall(Request)": lambda: bridged.acall(request),
        "dsrs_dspy.LM(LaneMux).acall(Request)": lambda: bridged_mux.acall(mux_request),
    }
    try:
        native = dspy.LM("openai/bench-model", api_base=f"{url}/v1", api_key="bench", cache=False, num_retries=0)
        native_request = lm15.Request(model="openai/bench-model", messages=(lm15.Message.user(PROMPT),))
        clients["context: dspy.LM native engine (no dsrs)"] = lambda: native.acall(native_request)
    except Exception as exc:  # an optional context figure; the bridge figures stand without it
        print(f"  note: DSPy's native engine not measured: {type(exc).__name__}: {exc}")
    return clients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args()
    rounds, block = (4, 50) if args.quick else (10, 200)
    os.environ.setdefault("DSRS_LEDGER", "0")  # measure the bridge, not the local usage ledger
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # DSPy's native path: no metadata download
    warnings.simplefilter("error", DeprecationWarning)  # the bridge must not take a deprecated path
    import dspy

    print(
        f"python {sys.version.split()[0]}, dspy {dspy.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; rounds={rounds}, calls/round/variant={block}"
    )
    with BenchServer(words=8) as srv:

        async def run() -> dict[str, float]:
            return await _measure(_clients(srv.url), rounds, block)

        p50 = asyncio.run(run())
    base = p50["dsrs LM.acall (baseline)"]
    for name, us in p50.items():
        print(
            f"{name}: p50 {us:.0f} us  (dsrs LM.acall {base:.0f} us, difference {us - base:+.0f} us, ratio {us / base:.2f})"
        )


if __name__ == "__main__":
    main()
