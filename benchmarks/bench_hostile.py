"""Hard bounds against a hostile server: how late a call ends, how much memory it takes, what leaks.

Usage::

    .venv/bin/python benchmarks/bench_hostile.py            # full run (~1 minute)
    .venv/bin/python benchmarks/bench_hostile.py --quick    # one repetition per deadline case

Server: ``dsrs.testing.HostileServer`` (raw asyncio sockets on 127.0.0.1, in this process's
thread; drips every 0.3 s). Both transports, each figure with its baseline from the same run:

* **deadline**: ``LM(..., timeout=1, retries=0).acall``/``.astream`` against each drip (status
  line, body bytes, SSE heartbeats, SSE deltas), and one call with the LM's default retries;
  figure: worst time past the deadline over the repetitions, after a warm-up call (baseline: the
  timeout itself; target: <= +200 ms);
* **memory**: peak RSS growth (``VmHWM`` after ``/proc/self/clear_refs``) of one call in a fresh
  process per case: 200 MB body (declared, chunked), 256 MiB gzip bomb (call and stream), endless
  SSE line; baseline: the same process reading the 200 MB chunked body with the bound lifted
  (what holding a body costs); target: <= 56 MiB (one 32 MiB body and slack; two bodies held at once fail it);
* **secrets**: every error from redirects (loop, cross-origin), echoed keys (401/500, call and
  stream) and DEBUG records of httpx/httpcore/aiohttp searched for the key (target: 0 found), and
  requests that reached the other origin (target: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time

import dsrs
from dsrs.testing import HostileServer
from dsrs.transport import make_transport, set_transport_factory
from dsrs.transport._secrets import LOGGERS

MIB = 1024 * 1024
KEY = "benchhostilekey0123456789abcdef"

_PROBE = r"""
import asyncio, gc, json, re, sys
import dsrs
from dsrs.transport import HttpRequest, get_transport, make_transport, set_transport_factory

name, url, case = sys.argv[1:4]
set_transport_factory(lambda: make_transport(name))

def status(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

async def call(s):
    await dsrs.LM("m", base_url=f"{url}/{s}/v1", timeout=30, retries=2).acall("hi")

async def stream(s):
    async for _ in dsrs.LM("m", base_url=f"{url}/{s}/v1", timeout=30).astream("hi"):
        pass

async def unbounded():
    req = HttpRequest("POST", f"{url}/huge-body-chunked/v1/chat/completions", {}, b"{}", 30.0, max_body_bytes=300 << 20)
    assert len((await get_transport().send(req)).content) == 200 << 20

CASES = {
    "200 MB body (content-length)": lambda: call("huge-body"),
    "200 MB body (chunked)": lambda: call("huge-body-chunked"),
    "gzip bomb, call": lambda: call("gzip-bomb"),
    "gzip bomb, stream": lambda: stream("gzip-bomb"),
    "endless SSE line": lambda: stream("endless-line"),
    "baseline: 200 MB held": unbounded,
}

async def main():
    await call("ok")
    await stream("ok")
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS")
    try:
        await CASES[case]()
        outcome = "ok"
    except Exception as exc:
        outcome = type(exc).__name__
    print(json.dumps({"growth": status("VmHWM") - before, "outcome": outcome}))

asyncio.run(main())
"""
MEMORY_CASES = (
    "baseline: 200 MB held",
    "200 MB body (content-length)",
    "200 MB body (chunked)",
    "gzip bomb, call",
    "gzip bomb, stream",
    "endless SSE line",
)


def _set(name: str) -> None:
    set_transport_factory(lambda: make_transport(name))


async def _drain(lm: dsrs.LM) -> None:
    async for _ in lm.astream("hi"):
        pass


async def deadlines(server: HostileServer, reps: int) -> dict[str, float]:
    await dsrs.LM("m", base_url=server.base_url("ok")).acall("warm")
    worst: dict[str, float] = {}
    for scenario, stream, retries in (
        ("drip-headers", False, 0),
        ("drip-bytes", False, 0),
        ("drip-heartbeats", True, 0),
        ("drip-deltas", True, 0),
        ("drip-bytes", False, None),
    ):
        label = f"{scenario} ({'stream' if stream else 'call'}{', default retries' if retries is None else ''})"
        for _ in range(reps):
            lm = dsrs.LM("m", base_url=server.base_url(scenario), timeout=1.0, retries=retries)
            t0 = time.perf_counter()
            try:
                await (_drain(lm) if stream else lm.acall("hi"))
            except dsrs.LMTimeoutError:
                pass
            late = time.perf_counter() - t0 - 1.0
            worst[label] = max(worst.get(label, -1.0), late)
    return worst


async def secrets(server: HostileServer) -> tuple[int, int, int]:
    """(errors and records searched, keys found, requests that reached the other origin)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    before_other = len(server.other_origin_requests)
    texts: list[str] = []
    try:
        for scenario in ("redirect-loop", "redirect-cross-origin", "echo-keys", "echo-keys-500"):
            for stream in (False, True):
                lm = dsrs.LM("m", base_url=server.base_url(scenario), api_key=KEY)
                try:
                    await (_drain(lm) if stream else lm.acall("hi"))
                except dsrs.LMError as exc:
                    e: BaseException | None = exc
                    while e is not None:
                        texts += [str(e), repr(e), e.message if isinstance(e, dsrs.LMError) else "", str(e.args)]
                        texts += [str(getattr(e, "body", "") or "")]
                        e = e.__cause__ or e.__context__
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    texts += [r.getMessage() for r in records]
    found = sum(1 for t in texts if KEY in t)
    return len(texts), found, len(server.other_origin_requests) - before_other


def memory(transport: str, server: HostileServer, case: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, transport, server.url, case], capture_output=True, text=True, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(result["growth"]), str(result["outcome"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 1 if args.quick else 3
    print(f"hostile-server bounds, Python {sys.version.split()[0]}, drips every 0.3 s, timeout=1 s, {reps} rep(s)")
    with HostileServer(interval=0.3, give_up_after=15.0) as server:
        for transport in ("aiohttp", "httpx"):
            _set(transport)
            print(f"[{transport}]")
            for label, late in asyncio.run(deadlines(server, reps)).items():
                verdict = "PASS" if late <= 0.2 else "FAIL"
                print(
                    f"  deadline, {label}: ended {late * 1000:+.0f} ms past timeout=1 s (target <= +200 ms) {verdict}"
                )
            base = 0
            for case in MEMORY_CASES:
                growth, outcome = memory(transport, server, case)
                if case.startswith("baseline"):
                    base = growth
                    print(f"  memory, {case}: +{growth / MIB:.0f} MiB peak RSS")
                    continue
                verdict = "PASS" if growth <= 56 * MIB and outcome == "ResponseParseError" else "FAIL"
                print(
                    f"  memory, {case}: +{growth / MIB:.1f} MiB peak RSS, {outcome}  "
                    f"(baseline {base / MIB:.0f} MiB, ratio {growth / base:.2f}, target <= 56 MiB) {verdict}"
                )
            searched, found, other = asyncio.run(secrets(server))
            verdict = "PASS" if found == 0 and other == 0 else "FAIL"
            print(
                f"  secrets: {found} found in {searched} error texts and DEBUG records; {other} requests reached the other origin (target 0) {verdict}"
            )
        set_transport_factory(None)


if __name__ == "__main__":
    main()
