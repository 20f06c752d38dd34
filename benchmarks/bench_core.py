"""Core call-path benchmark (issue 2): import cost, one acall's latency, 256-way throughput.

Usage::

    .venv/bin/python benchmarks/bench_core.py            # full run (a few minutes)
    .venv/bin/python benchmarks/bench_core.py --quick    # short run (under a minute)
    .venv/bin/python benchmarks/bench_core.py --install-baselines   # openai/LiteLLM/DSPy venv
    .venv/bin/python benchmarks/bench_core.py --quick --skip-import --clients aiohttp,dsrs --no-ledger
                                               # LM.acall alone, local usage ledger off (DSRS_LEDGER=0)

Every figure is a ratio against a baseline measured in the same run, because the machine is noisy:

* ``import dsrs`` + ``dsrs.providers()`` (all six packages discovered, no provider implementation
  module imported — asserted) vs ``import httpx, pydantic``: medians over fresh subprocesses,
  measured in-process (interpreter start-up excluded), alternating the two.
* one ``await lm.acall(...)`` through ``dsrs.LM("m", base_url=...)`` vs a raw aiohttp request
  (``session.post(url, json=body)`` then ``await resp.json()``): p50 of sequential calls.
* 256 concurrent ``acall`` s vs 256 concurrent raw aiohttp requests: requests per second.

The server is ``_server.BenchServer`` (a separate process). Each client runs in a fresh subprocess
per round (``--worker``), clients interleaved round by round so drift hits all of them alike.
Context clients: aiohttp tuned (pre-built headers + orjson), httpx, dsrs on its httpx transport,
and — from the venv made by ``--install-baselines`` under ``${DSRS_CACHE_HOME:-~/.cache/dsrs}`` —
httpx-aiohttp, the openai SDK, LiteLLM and DSPy (skipped, with a note, when not installed).
On glibc the script runs itself again with malloc's thresholds fixed (``_alloc.py``: otherwise a
process's allocation history decides whether every response buffer costs three system calls, in the
raw baseline as much as in dsrs); ``DSRS_BENCH_MALLOC=native`` runs without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _alloc import pin_allocator  # noqa: E402
from _server import BenchServer  # noqa: E402

PROMPT = "Say hello to the benchmark, briefly."
MODEL = "m"
PAYLOAD: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
SIX = ("dsrs-core", "dsrs-openai", "dsrs-google", "dsrs-gptoss", "dsrs-pylon", "dsrs-ollama")

TARGET_IMPORT_MS = 150.0
TARGET_P50_RATIO = 1.30
TARGET_RPS_RATIO = 0.70


def cache_home() -> Path:
    return Path(os.environ.get("DSRS_CACHE_HOME") or Path.home() / ".cache" / "dsrs")


def bench_venv_python() -> Path:
    return cache_home() / "bench-venv" / "bin" / "python"


# --- clients (run inside --worker subprocesses) ----------------------------------------------
# Each factory returns (call, close): ``call()`` makes one request and returns the answer text.

Call = Callable[[], Awaitable[str]]
Factory = Callable[[str], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]


async def _client_aiohttp(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    chat = url + "/v1/chat/completions"

    async def call() -> str:
        async with session.post(chat, json=PAYLOAD) as resp:
            data = await resp.json()
        return str(data["choices"][0]["message"]["content"])

    return call, session.close


async def _client_aiohttp_tuned(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp
    import orjson

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512), skip_auto_headers=("User-Agent",))
    chat = url + "/v1/chat/completions"
    headers = {"content-type": "application/json", "accept": "application/json"}

    async def call() -> str:
        async with session.post(chat, data=orjson.dumps(PAYLOAD), headers=headers) as resp:
            data = orjson.loads(await resp.read())
        return str(data["choices"][0]["message"]["content"])

    return call, session.close


async def _client_httpx(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=512), timeout=httpx.Timeout(120.0)
    )
    chat = url + "/v1/chat/completions"

    async def call() -> str:
        resp = await client.post(chat, json=PAYLOAD)
        return str(resp.json()["choices"][0]["message"]["content"])

    return call, client.aclose


async def _client_httpx_aiohttp(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient  # type: ignore[import-not-found]

    client = HttpxAiohttpClient(
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=512), timeout=httpx.Timeout(120.0)
    )
    chat = url + "/v1/chat/completions"

    async def call() -> str:
        resp = await client.post(chat, json=PAYLOAD)
        return str(resp.json()["choices"][0]["message"]["content"])

    return call, client.aclose


async def _client_dsrs(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import dsrs

    lm = dsrs.LM(MODEL, base_url=url)

    async def call() -> str:
        return (await lm.acall(PROMPT)).text

    async def close() -> None:
        from dsrs.transport import get_transport

        await lm.aclose()
        await get_transport().aclose()

    return call, close


async def _client_openai(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import openai  # type: ignore[import-not-found]

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="bench", max_retries=0, timeout=120.0)

    async def call() -> str:
        r = await client.chat.completions.create(model=MODEL, messages=PAYLOAD["messages"])
        return str(r.choices[0].message.content)

    return call, client.close


async def _client_litellm(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import litellm  # type: ignore[import-not-found]

    litellm.telemetry = False

    async def call() -> str:
        r = await litellm.acompletion(
            model="openai/" + MODEL, api_base=url + "/v1", api_key="bench", messages=PAYLOAD["messages"]
        )
        return str(r.choices[0].message.content)

    async def close() -> None:
        pass

    return call, close


async def _client_dspy(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import dspy  # type: ignore[import-not-found]

    lm = dspy.LM("openai/" + MODEL, api_base=url + "/v1", api_key="bench", cache=False)

    async def call() -> str:
        out = await lm.acall(messages=PAYLOAD["messages"])
        return str(out[0])

    async def close() -> None:
        pass

    return call, close


#: name -> (factory, label, runs in the bench venv)
CLIENTS: dict[str, tuple[Factory, str, bool]] = {
    "aiohttp": (_client_aiohttp, "raw aiohttp", False),
    "aiohttp-tuned": (_client_aiohttp_tuned, "aiohttp, pre-built headers + orjson", False),
    "dsrs": (_client_dsrs, "dsrs LM.acall (aiohttp transport)", False),
    "dsrs-httpx": (_client_dsrs, "dsrs LM.acall (httpx transport)", False),
    "httpx": (_client_httpx, "raw httpx.AsyncClient", False),
    "httpx-aiohttp": (_client_httpx_aiohttp, "httpx API over aiohttp (httpx-aiohttp)", True),
    "openai": (_client_openai, "openai SDK (AsyncOpenAI)", True),
    "litellm": (_client_litellm, "LiteLLM acompletion", True),
    "dspy": (_client_dspy, "DSPy LM.acall (cache off)", True),
}
#: Clients that need the bench venv, with the module that must import there.
VENV_MODULE = {"httpx-aiohttp": "httpx_aiohttp", "openai": "openai", "litellm": "litellm", "dspy": "dspy"}
#: Environment of bench-venv workers: no network fetches at import (LiteLLM's price map).
VENV_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}


async def _worker(names: list[str], url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure ``names`` in one event loop, interleaved in small blocks so noise hits all alike.

    A client that raises is reported as skipped (with the error) and the others go on.
    """
    clients: dict[str, Call] = {}
    closers: list[Callable[[], Awaitable[None]]] = []
    clock = time.perf_counter_ns
    out: dict[str, Any] = {}

    def fail(name: str, exc: BaseException) -> None:
        clients.pop(name, None)
        out[name] = {"skip": f"failed: {type(exc).__name__}: {exc}"[:200]}

    try:
        for name in names:
            try:
                call, close = await CLIENTS[name][0](url)
                closers.append(close)
                text = await call()
                if not text.startswith("w0"):
                    raise RuntimeError(f"unexpected answer {text!r}")
                for _ in range(args.warmup):
                    await call()
            except Exception as exc:
                fail(name, exc)
                continue
            clients[name] = call
            out[name] = {"samples_ns": [], "rps": []}
        block = 25
        for b in range(max(1, args.seq // block)):
            order = names[b % len(names) :] + names[: b % len(names)]
            for name in order:
                client = clients.get(name)
                if client is None:
                    continue
                samples = out[name]["samples_ns"]
                try:
                    for _ in range(block):
                        t0 = clock()
                        await client()
                        samples.append(clock() - t0)
                except Exception as exc:
                    fail(name, exc)

        async def burst(call: Call, total: int, seconds: float) -> float:
            """Calls per second of ``conc`` lanes sharing ``total`` calls (stopping early after ``seconds``)."""
            remaining = [total]
            done = [0]
            deadline = clock() + int(seconds * 1e9)

            async def lane() -> None:
                while remaining[0] > 0 and clock() < deadline:
                    remaining[0] -= 1
                    await call()
                    done[0] += 1

            t0 = clock()
            await asyncio.gather(*(lane() for _ in range(args.conc)))
            return done[0] / ((clock() - t0) / 1e9)

        if args.total:
            for name, call in list(clients.items()):  # open every client's connections once
                try:
                    await burst(call, args.conc * 2, args.burst_seconds * 2)
                except Exception as exc:
                    fail(name, exc)
            for b in range(args.bursts):
                order = names[b % len(names) :] + names[: b % len(names)]
                for name in order:
                    if name not in clients:
                        continue
                    try:
                        out[name]["rps"].append(await burst(clients[name], args.total, args.burst_seconds))
                    except Exception as exc:
                        fail(name, exc)
        return out
    finally:
        for close in closers:
            try:
                await close()
            except Exception:
                pass


def run_worker(args: argparse.Namespace) -> None:
    names = [n for n in args.worker.split(",") if n]
    result: dict[str, Any] = {}
    import importlib.util

    present = []
    for name in names:
        module = VENV_MODULE.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            result[name] = {"skip": f"{module} not installed"}
        else:
            present.append(name)
    if present:
        result.update(asyncio.run(_worker(present, args.url, args)))
    print(json.dumps(result))


# --- import time ----------------------------------------------------------------------------

_IMPORT_BASE = """
import time
t0 = time.perf_counter_ns()
import httpx, pydantic
dt = time.perf_counter_ns() - t0
import json
print(json.dumps({"ns": dt}))
"""

_IMPORT_DSRS_LM = """
import time
t0 = time.perf_counter_ns()
import dsrs
dsrs.providers()
dsrs.LM("m", base_url="http://127.0.0.1:9").resolved
dt = time.perf_counter_ns() - t0
import json
print(json.dumps({"ns": dt}))
"""

_IMPORT_DSRS = """
import time
t0 = time.perf_counter_ns()
import dsrs
specs = dsrs.providers()
dt = time.perf_counter_ns() - t0
import json, sys
dists = sorted({s.distribution for s in specs})
impl = sorted({s.factory.partition(":")[0] for s in specs if isinstance(s.factory, str)})
heavy = ("pydantic.main", "httpx", "aiohttp", "websockets", "coincurve", "asyncio")
loaded = [m for m in (*impl, *heavy) if m in sys.modules]
pkgs = ("dsrs_openai", "dsrs_google", "dsrs_gptoss", "dsrs_pylon", "dsrs_ollama")
extra = sorted(m for m in sys.modules if m.startswith(pkgs) and m.count(".") == 1 and not m.endswith("._plugin"))
print(json.dumps({"ns": dt, "dists": dists, "impl": impl, "loaded": loaded, "extra": extra}))
"""


def _run_snippet(code: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tempfile.gettempdir()
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_import(reps: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSRS_")}
    _run_snippet(_IMPORT_BASE, env)  # warm the file cache and .pyc files
    first = _run_snippet(_IMPORT_DSRS, env)
    missing = sorted(set(SIX) - set(first["dists"]))
    if missing:
        raise SystemExit(f"import benchmark: distributions not discovered: {missing} (found {first['dists']})")
    base: list[float] = []
    dsrs_ms: list[float] = []
    lm_ms: list[float] = []
    for _ in range(reps):
        base.append(_run_snippet(_IMPORT_BASE, env)["ns"] / 1e6)
        r = _run_snippet(_IMPORT_DSRS, env)
        if r["loaded"]:
            raise SystemExit(
                f"import benchmark: discovery imported provider implementations or heavy modules: {r['loaded']}"
            )
        dsrs_ms.append(r["ns"] / 1e6)
        lm_ms.append(_run_snippet(_IMPORT_DSRS_LM, env)["ns"] / 1e6)
    return {
        "base_ms": statistics.median(base),
        "dsrs_ms": statistics.median(dsrs_ms),
        "lm_ms": statistics.median(lm_ms),
        "reps": reps,
        "providers": len(first["impl"]),
        "extra": first["extra"],
        "dists": first["dists"],
    }


# --- the call benchmarks --------------------------------------------------------------------


def run_group(
    names: list[str], python: Path, url: str, args: argparse.Namespace, extra_env: dict[str, str]
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSRS_")}
    env.update(VENV_ENV)
    env.update(extra_env)
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        ",".join(names),
        "--url",
        url,
        "--seq",
        str(args.seq),
        "--conc",
        str(args.conc),
        "--total",
        str(args.total),
        "--bursts",
        str(args.bursts),
        "--burst-seconds",
        str(args.burst_seconds),
        "--warmup",
        str(args.warmup),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), timeout=1800)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {n: {"skip": f"worker failed: {tail}"} for n in names}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _pct(samples: list[int], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0


def bench_calls(names: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Two groups, each against its own raw-aiohttp reference in the same process: the dev venv's
    clients, and the bench venv's (openai SDK, LiteLLM, DSPy, httpx-aiohttp)."""
    groups: list[tuple[str, list[str], Path | None, dict[str, str]]] = []
    core = [n for n in ("aiohttp-tuned", "dsrs") if n in names]
    slow = [n for n in ("httpx", "dsrs-httpx") if n in names]
    remote = [n for n in names if CLIENTS[n][2]]
    # Workers get no DSRS_* variable of the caller's; --no-ledger sets one (for code older than it).
    ledger = {"DSRS_LEDGER": "0"} if args.no_ledger else {}
    groups.append(("core", ["aiohttp", *core], Path(sys.executable), {"DSRS_TRANSPORT": "aiohttp", **ledger}))
    if slow:
        groups.append(("httpx", ["aiohttp", *slow], Path(sys.executable), {"DSRS_TRANSPORT": "httpx", **ledger}))
    if remote:
        venv_py = bench_venv_python()
        groups.append(("venv", ["aiohttp", *remote], venv_py if venv_py.exists() else None, {}))
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    with BenchServer(words=args.words) as srv:
        for r in range(args.rounds):
            for gname, members, python, genv in groups:
                if python is None:
                    for n in members[1:]:
                        merged.setdefault(gname, {})[n] = {"skip": "bench venv missing (run --install-baselines)"}
                    continue
                # The slow context clients (LiteLLM ~6 ms a call) get a quarter of the calls.
                gargs = (
                    args if gname == "core" else argparse.Namespace(**{**vars(args), "seq": max(100, args.seq // 4)})
                )
                res = run_group(members, python, srv.url, gargs, genv)
                g = merged.setdefault(gname, {})
                for n, v in res.items():
                    if "skip" in v:
                        g[n] = v
                        continue
                    acc = g.setdefault(n, {"samples_ns": [], "rps": []})
                    if "skip" not in acc:
                        acc["samples_ns"].extend(v["samples_ns"])
                        acc["rps"].extend(v["rps"])
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        served = srv.requests()
    out: dict[str, dict[str, Any]] = {}
    for gname, g in merged.items():
        for n, acc in g.items():
            key = n if gname == "core" or n != "aiohttp" else f"aiohttp@{gname}"
            if "skip" in acc:
                out[key] = acc
                continue
            s = acc["samples_ns"]
            out[key] = {
                "group": gname,
                "p50_us": _pct(s, 0.50),
                "p90_us": _pct(s, 0.90),
                "p99_us": _pct(s, 0.99),
                "rps": statistics.median(acc["rps"]) if acc["rps"] else 0.0,
                "n": len(s),
            }
    out["_server"] = {"answered": served}
    return out


# --- reporting ------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(imp: dict[str, Any] | None, calls: dict[str, dict[str, Any]] | None, args: argparse.Namespace) -> bool:
    ok = True
    print()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"rounds={args.rounds}, seq={args.seq}/round, conc={args.conc}, bursts={args.bursts}x{args.total}/round, "
        f"import reps={args.import_reps}{', ledger off (--no-ledger)' if args.no_ledger else ''}"
    )
    if imp is not None:
        extra = imp["dsrs_ms"] - imp["base_ms"]
        good = extra <= TARGET_IMPORT_MS
        ok &= good
        print(
            f"import dsrs + providers(): {imp['dsrs_ms']:.1f} ms  (import httpx, pydantic {imp['base_ms']:.1f} ms, "
            f"difference {extra:+.1f} ms, target <= +{TARGET_IMPORT_MS:.0f} ms; {imp['providers']} providers from "
            f"{len(imp['dists'])} distributions; no implementation module, pydantic model, asyncio or HTTP client "
            f"imported) {_verdict(good)}"
        )
        if imp["extra"]:
            print(f"  note: provider packages' entry points also imported: {', '.join(imp['extra'])}")
        print(
            f"  context: import dsrs + providers() + first LM(...): {imp['lm_ms']:.1f} ms  "
            f"(difference {imp['lm_ms'] - imp['base_ms']:+.1f} ms; LM is a pydantic model, loaded on first use)"
        )
    if calls is not None:
        raw = calls.get("aiohttp", {})
        me = calls.get("dsrs", {})
        if "p50_us" in raw and "p50_us" in me:
            ratio = me["p50_us"] / raw["p50_us"]
            good = ratio <= TARGET_P50_RATIO
            ok &= good
            print(
                f"acall p50: {me['p50_us']:.0f} us  (raw aiohttp {raw['p50_us']:.0f} us, ratio {ratio:.2f}, "
                f"target <= {TARGET_P50_RATIO:.2f}) {_verdict(good)}"
            )
            ratio = me["rps"] / raw["rps"]
            good = ratio >= TARGET_RPS_RATIO
            ok &= good
            print(
                f"acall x{args.conc} throughput: {me['rps']:,.0f} req/s  (raw aiohttp {raw['rps']:,.0f} req/s, "
                f"ratio {ratio:.2f}, target >= {TARGET_RPS_RATIO:.2f}) {_verdict(good)}"
            )
        else:
            ok = False
            print("acall: no figures (a worker failed): " + json.dumps({k: calls.get(k) for k in ("aiohttp", "dsrs")}))
        print()
        print("Context (ratios against the raw aiohttp run in the same worker process):")
        print(f"  {'client':42} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'x raw':>6} {'req/s':>9} {'x raw':>6}")
        for name, res in calls.items():
            if name.startswith("_"):
                continue
            base, _, group = name.partition("@")
            label = CLIENTS[base][1] + (f" ({group} group)" if group else "")
            if "skip" in res:
                print(f"  {label:42} skipped: {res['skip']}")
                continue
            ref = calls.get("aiohttp" if res["group"] == "core" else f"aiohttp@{res['group']}", {})
            rp = res["p50_us"] / ref["p50_us"] if ref.get("p50_us") else float("nan")
            rr = res["rps"] / ref["rps"] if ref.get("rps") else float("nan")
            print(
                f"  {label:42} {res['p50_us']:8.0f} {res['p90_us']:8.0f} {res['p99_us']:8.0f} {rp:6.2f} "
                f"{res['rps']:9,.0f} {rr:6.2f}"
            )
    print()
    print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")
    return ok


def install_baselines() -> None:
    """Create ``$DSRS_CACHE_HOME/bench-venv`` with the comparison libraries (PyPI only)."""
    venv = bench_venv_python().parent.parent
    pkgs = ["openai", "litellm", "dspy", "httpx-aiohttp", "aiohttp", "orjson"]
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", str(venv), "--python", sys.executable], check=True)
        subprocess.run([uv, "pip", "install", "-p", str(venv / "bin" / "python"), *pkgs], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *pkgs], check=True)
    print(f"bench venv ready: {venv}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short run: fewer rounds, calls and import repetitions")
    p.add_argument("--rounds", type=int, help="worker processes per client group (default 5, quick 2)")
    p.add_argument("--seq", type=int, help="timed sequential calls per client per round (default 1000, quick 400)")
    p.add_argument("--warmup", type=int, help="untimed sequential calls first (default 300, quick 100)")
    p.add_argument("--conc", type=int, default=256, help="concurrent calls (default 256)")
    p.add_argument("--total", type=int, help="calls per timed concurrent burst (default 4000, quick 2000)")
    p.add_argument("--bursts", type=int, help="timed bursts per client per round (default 3, quick 2)")
    p.add_argument("--burst-seconds", type=float, help="stop a burst early after this long (default 3, quick 1.5)")
    p.add_argument("--import-reps", type=int, help="fresh processes per import measurement (default 41, quick 11)")
    p.add_argument("--words", type=int, default=8, help="words in the server's answer")
    p.add_argument("--clients", help="comma-separated subset of: " + ",".join(CLIENTS))
    p.add_argument("--skip-import", action="store_true")
    p.add_argument("--skip-calls", action="store_true")
    p.add_argument(
        "--no-ledger",
        action="store_true",
        help="dsrs workers run with DSRS_LEDGER=0 (the local usage ledger off: to compare with code older than it)",
    )
    p.add_argument("--install-baselines", action="store_true", help="create the bench venv (openai, LiteLLM, DSPy)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    q = args.quick
    args.rounds = args.rounds or (2 if q else 5)
    args.seq = args.seq if args.seq is not None else (400 if q else 1000)
    args.warmup = args.warmup if args.warmup is not None else (100 if q else 300)
    args.total = args.total if args.total is not None else (2000 if q else 4000)
    args.bursts = args.bursts or (2 if q else 3)
    args.burst_seconds = args.burst_seconds or (1.5 if q else 3.0)
    args.import_reps = args.import_reps or (11 if q else 41)

    if args.worker:
        run_worker(args)
        return
    if args.install_baselines:
        install_baselines()
        return
    print(pin_allocator())  # workers and the server inherit it (see _alloc)
    names = args.clients.split(",") if args.clients else list(CLIENTS)
    unknown = [n for n in names if n not in CLIENTS]
    if unknown:
        raise SystemExit(f"unknown clients {unknown}; choose from {list(CLIENTS)}")
    if "aiohttp" not in names:
        names.insert(0, "aiohttp")
    imp = None if args.skip_import else bench_import(args.import_reps)
    calls = None if args.skip_calls else bench_calls(names, args)
    ok = report(imp, calls, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"import": imp, "calls": calls, "ok": ok}, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
