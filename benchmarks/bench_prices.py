"""Fallback prices benchmark (issue 16 item 7): what the genai-prices fallback costs per call and once.

Usage::

    .venv/bin/python benchmarks/bench_prices.py            # full run (about 30 s)
    .venv/bin/python benchmarks/bench_prices.py --quick    # short run

Per call: ``hooks().cost(model, usage)`` as dsrs runs it after every call (and for every budget
estimate), with only dsrs-core's plugin loaded, against the same-run baseline of a model a package
table prices (``fake:echo``, core's own table: one dict-free arithmetic answer):

* a model only genai-prices lists (``openai:gpt-4o`` here, as no dsrs-openai table is loaded);
* a tiered one (``google:gemini-2.5-pro`` above 200k prompt tokens);
* a model neither knows (``openai:no-such-model``: the lookup's miss is remembered);
* a provider without a fallback (``ollama:llama3.2``).

Rounds interleave the variants, so load spikes hit all alike; median ns per call over the rounds.

Once per process: fresh interpreters time ``import dsrs`` plus the first price of a table model
(baseline) against the same plus the first genai-prices price (importing its data and building its
snapshot), median of several runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "package table (fake:echo)": ("fake:echo", (1_000, 200)),
    "genai-prices (openai:gpt-4o)": ("openai:gpt-4o", (1_000, 200)),
    "genai-prices tiered (google:gemini-2.5-pro, 300k)": ("google:gemini-2.5-pro", (300_000, 200)),
    "unknown to both (openai:no-such-model)": ("openai:no-such-model", (1_000, 200)),
    "no fallback provider (ollama:llama3.2)": ("ollama:llama3.2", (1_000, 200)),
}
BASELINE = "package table (fake:echo)"

_FIRST_PRICE = """
import time
t0 = time.perf_counter()
import dsrs
from dsrs.plugins import hooks
cost = hooks().cost({model!r}, dsrs.LmUsage.from_tokens(10, 10))
assert (cost is not None) == {priced!r}, cost
print(time.perf_counter() - t0)
"""


def per_call(rounds: int, calls: int) -> dict[str, float]:
    import dsrs
    from dsrs.plugins import hooks as plugin_hooks

    hooks = plugin_hooks()  # only dsrs-core's plugin: DSRS_DISABLE_PLUGIN_AUTOLOAD=1 (set in main)
    usages = {name: dsrs.LmUsage.from_tokens(*tokens) for name, (_, tokens) in VARIANTS.items()}
    for name, (model, _) in VARIANTS.items():  # warm: imports, snapshot, lookup caches
        hooks.cost(model, usages[name])
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, (model, _) in VARIANTS.items():
            usage = usages[name]
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                hooks.cost(model, usage)
            samples[name].append((time.perf_counter_ns() - t0) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def first_price(model: str, priced: bool, runs: int) -> float:
    code = _FIRST_PRICE.format(model=model, priced=priced)
    env = dict(os.environ)
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args()
    os.environ["DSRS_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no provider package's table: the fallback answers
    rounds, calls, runs = (5, 2_000, 3) if args.quick else (15, 10_000, 9)
    try:
        import genai_prices
    except ImportError:
        sys.exit("genai-prices is not installed: pip install 'dsrs-core[prices]'")
    print(
        f"python {sys.version.split()[0]}, genai-prices {genai_prices.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; rounds={rounds}, calls/round={calls}, process runs={runs}"
    )
    medians = per_call(rounds, calls)
    base = medians[BASELINE]
    for name, ns in medians.items():
        print(
            f"cost hook, {name}: {ns / 1000:.2f} us/call  (package table {base / 1000:.2f} us, ratio {ns / base:.2f})"
        )
    table = first_price("fake:echo", True, runs)
    genai = first_price("openai:gpt-4o", True, runs)
    print(
        f"first genai-prices price in a fresh process (import dsrs + price): {genai * 1000:.0f} ms  "
        f"(first table price {table * 1000:.0f} ms, difference +{(genai - table) * 1000:.0f} ms, "
        f"ratio {genai / table:.2f}; once per process, only when a table does not know the model)"
    )


if __name__ == "__main__":
    main()
