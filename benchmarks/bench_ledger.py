"""Local usage ledger benchmark (issue 16 item 4): what recording every call costs on the hot path.

Usage::

    .venv/bin/python benchmarks/bench_ledger.py            # full run (about a minute)
    .venv/bin/python benchmarks/bench_ledger.py --quick    # short run

Sequential ``await lm.acall(...)`` in one process, three variants measured round by round
(interleaved, so drift hits all alike), each against the same-run baseline *no sinks* (no
``dsrs_usage_recorded`` hook at all, so no ``UsageRecord`` is built: a call as it was before the
ledger), plus *off* (``DSRS_LEDGER=0``: the hook runs and drops the record at once):

* ``fake:echo`` — the cheapest call dsrs has (no I/O), so the ratio is the worst case;
* a loopback HTTP server (``_server.BenchServer``, its own process) — a real call's path;
* each with the ledger on, and with the ledger plus the opt-in prompt log (``DSRS_LOG=1``).

Per variant: µs per call, median and best over the rounds, of process CPU time (both threads: the
cost of recording, steadier than wall time on a loaded machine) and of wall time, each from the
first call until the last row is on disk (the final flush is timed too), with the overhead and the
ratio to *no sinks*. After each round the script checks that every call was written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _server import BenchServer  # noqa: E402

VARIANTS = ("no sinks", "off", "ledger", "ledger+log")


def _configure(variant: str, directory: Path) -> tuple[object, object]:
    from dsrs import _calllog, _ledger
    from dsrs.plugins._manager import Hooks

    # "no sinks": no usage hook at all, so no UsageRecord is even built (a call's cost before the
    # ledger existed). Patched on the class for the benchmark only.
    Hooks.has_usage_sinks = property(lambda self: variant != "no sinks")  # type: ignore[assignment,method-assign]

    os.environ["DSRS_LEDGER"] = "0" if variant in ("off", "no sinks") else "1"
    os.environ["DSRS_LOG"] = "1" if variant == "ledger+log" else "0"
    ledger = _ledger.LocalLedger(directory / f"usage-{variant}.sqlite3")
    log = _calllog.CallLog(directory / f"logs-{variant}.sqlite3")
    _ledger.set_ledger(ledger)
    _calllog.set_log(log)
    return ledger, log


async def _calls(lm: object, calls: int) -> None:
    acall = lm.acall  # type: ignore[attr-defined]
    for i in range(calls):
        await acall(f"benchmark prompt {i}")


def _round(lm: object, calls: int, ledger: object, log: object) -> tuple[float, float]:
    """Wall and process-CPU µs per call, up to the last row on disk (the final flush included)."""
    w0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(_calls(lm, calls))
    ledger.close()  # type: ignore[attr-defined]
    log.close()  # type: ignore[attr-defined]
    return (time.perf_counter() - w0) / calls * 1e6, (time.process_time() - c0) / calls * 1e6


def _report(label: str, what: str, per_call: dict[str, list[float]]) -> None:
    medians = {v: statistics.median(xs) for v, xs in per_call.items()}
    best = {v: min(xs) for v, xs in per_call.items()}
    base_m, base_b = medians["no sinks"], best["no sinks"]
    print(f"  {what}, median (best):")
    for v in VARIANTS:
        m, b = medians[v], best[v]
        print(
            f"    {v:<11} {m:8.2f} ({b:7.2f}) µs   overhead {m - base_m:+7.2f} ({b - base_b:+6.2f}) µs"
            f"   ratio {m / base_m:.3f} ({b / base_b:.3f})"
        )


def _measure(label: str, lm: object, rounds: int, calls: int, directory: Path) -> None:
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    asyncio.run(_calls(lm, min(calls, 200)))  # warm-up: imports, connections
    for _ in range(rounds):
        for variant in VARIANTS:
            ledger, log = _configure(variant, directory)
            w, c = _round(lm, calls, ledger, log)
            wall[variant].append(w)
            cpu[variant].append(c)
            expected = 0 if variant in ("off", "no sinks") else calls
            written = ledger.written  # type: ignore[attr-defined]
            assert written == expected, f"{variant}: {written} rows written for {calls} calls"
            if variant == "ledger+log":
                assert log.written == calls, f"log: {log.written} rows for {calls} calls"  # type: ignore[attr-defined]
    print(f"\n{label}: µs per call over {rounds} rounds of {calls} sequential calls (final flush included)")
    _report(label, "process CPU time (both threads)", cpu)
    _report(label, "wall time", wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per variant (default 7; --quick 3)")
    args = parser.parse_args()
    rounds, calls = (3, 2000) if args.quick else (7, 10000)
    rounds = args.rounds or rounds
    http_calls = calls // 5

    import dsrs

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["DSRS_CACHE_DIR"] = tmp
        print(f"python {sys.version.split()[0]}, dsrs {dsrs.__version__}, load average {os.getloadavg()[0]:.1f}")
        _measure("fake:echo (no I/O: worst case)", dsrs.LM("fake:echo"), rounds, calls, directory)
        with BenchServer(words=8) as srv:
            lm = dsrs.LM("openai-compat:m", base_url=srv.url)
            _measure(f"loopback HTTP server ({srv.url})", lm, rounds, http_calls, directory)


if __name__ == "__main__":
    main()
