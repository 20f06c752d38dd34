"""Benchmark README command 1 (``scripts/demo``) from a fresh clone: cold (empty cache) and warm.

    python benchmarks/bench_gptoss_coldstart.py [--warm-runs 3]

* cold: ``git clone`` of this checkout into a temp dir, ``DSRS_CACHE_HOME`` an empty temp dir, then
  ``bash scripts/demo`` until it prints the answer: venv, package install (the prebuilt llama.cpp
  engine comes as the xllamacpp wheel), model download, server start, answer. Target: <= 60 s.
* warm: the same command again with that cache (median of ``--warm-runs``). Target: <= 5 s.
* baseline, same run: a fresh interpreter that starts llama.cpp's server from the xllamacpp wheel
  directly and asks one chat completion (no dsrs) — the floor for "server start + first answer";
  the warm figure is printed with its ratio to it.

Needs git, network access to PyPI for the cold run, and the model cached by a previous install for
the baseline (``dsrs-gptoss install``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_BASELINE = r"""
import json, socket, sys, time, urllib.request
t0 = time.perf_counter()
import xllamacpp as x
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
p = x.CommonParams(); p.model.path = sys.argv[1]; p.port = port; p.n_ctx = 4096; p.use_jinja = True
server = x.Server(p)
body = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16,
        "temperature": 0}
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                             headers={"content-type": "application/json"})
json.loads(urllib.request.urlopen(req, timeout=120).read())
print(f"{time.perf_counter() - t0:.3f}")
"""


def _demo(clone: Path, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "DSRS_CACHE_HOME": str(cache)}
    t0 = time.perf_counter()
    out = subprocess.run(
        ["bash", str(clone / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0 or "answer:" not in out.stdout:
        raise SystemExit(f"scripts/demo failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    answer = next(line for line in out.stdout.splitlines() if line.startswith("answer:"))
    return wall, answer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warm-runs", type=int, default=3)
    args = ap.parse_args()
    from dsrs_gptoss import install

    with tempfile.TemporaryDirectory(prefix="dsrs-cold-") as tmp:
        clone, cache = Path(tmp) / "clone", Path(tmp) / "cache"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        cache.mkdir()
        cold, answer = _demo(clone, cache)
        warm = [_demo(clone, cache)[0] for _ in range(args.warm_runs)]
        model = install.install_model(report=lambda _m: None)
        base = []
        for _ in range(args.warm_runs):
            out = subprocess.run(
                [sys.executable, "-c", _BASELINE, str(model)], capture_output=True, text=True, timeout=300, check=True
            )
            base.append(float(out.stdout.strip().splitlines()[-1]))
    warm_med, base_med = statistics.median(warm), statistics.median(base)
    load = os.getloadavg()[0]
    print(f"cold  scripts/demo, fresh clone, empty cache: {cold:6.1f} s  (target <= 60 s; {answer})")
    print(f"warm  scripts/demo, same cache (median of {len(warm)}): {warm_med:6.2f} s  (target <= 5 s)")
    print(f"base  xllamacpp server start + 1 answer, no dsrs (median of {len(base)}): {base_med:6.2f} s")
    print(f"ratio warm / base: {warm_med / base_med:.2f}   load average at the end: {load:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
