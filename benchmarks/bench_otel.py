"""OpenTelemetry overhead per call (issue 16): not instrumented vs instrumented, same run.

Usage::

    python benchmarks/bench_otel.py            # ~20 s
    python benchmarks/bench_otel.py --quick

``await LM("fake:echo").acall(...)`` (no network: the figure is dsrs's own work) in interleaved
blocks: (a) not instrumented, (b) ``dsrs.instrument()`` with an SDK TracerProvider whose processor
drops spans (the cost of making them), (c) the same with an in-memory exporter (the cost of keeping
them). Prints the median µs per call of each and the ratio to (a). Needs opentelemetry-sdk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any


async def _calls(lm: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await lm.acall("benchmark the spans")
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    blocks, per_block = (6, 500) if args.quick else (16, 1000)

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import dsrs

    dropping = TracerProvider()  # no processor: spans are made and dropped
    keeping = TracerProvider()
    exporter = InMemorySpanExporter()
    keeping.add_span_processor(SimpleSpanProcessor(exporter))
    lm = dsrs.LM("fake:echo")

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"off": [], "on (spans dropped)": [], "on (in-memory exporter)": []}
        await _calls(lm, 300)  # warm up
        for b in range(blocks):
            order = list(out)
            order = order[b % 3 :] + order[: b % 3]
            for name in order:
                if name == "off":
                    dsrs.uninstrument()
                elif name.startswith("on (spans"):
                    dsrs.instrument(dropping)
                else:
                    dsrs.instrument(keeping)
                out[name].append(await _calls(lm, per_block))
                exporter.clear()
        dsrs.uninstrument()
        return out

    results = asyncio.run(run())
    base = statistics.median(results["off"])
    print(f"{'mode':28s} {'µs/call (median)':>18s} {'ratio':>7s}")
    for name, samples in results.items():
        med = statistics.median(samples)
        print(f"{name:28s} {med:18.1f} {med / base:7.2f}x")


if __name__ == "__main__":
    main()
