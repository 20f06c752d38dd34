"""Pylon swarm benchmark (issue 7): client-side overhead of a NIP-90 round trip over a loopback relay.

Usage::

    .venv/bin/python benchmarks/bench_pylon.py            # full run (300 jobs per scenario)
    .venv/bin/python benchmarks/bench_pylon.py --quick    # short run

A real relay (nostr-sdk ``LocalRelay``) listens on 127.0.0.1. The providers run in a *separate
process* (this script with ``--serve``), so they do not share the client's GIL: three DVMs
(``dsrs_pylon.dvm.DvmService``) over ``fake:echo`` — free, paid 21 msats, and free with a 20 ms
model — plus a NIP-47 wallet service holding the customer's and the provider's accounts. The
client runs ``PylonLM.acall`` sequentially. Each DVM records its own processing time (request
received → result signed); the overhead is ``round trip - DVM processing``: connect, subscribe
(EOSE) and publish (OK), the relay hops both ways, signature checks, closing everything, and, for
the paid job, decoding the invoice, the spend policy and paying through Nostr Wallet Connect.
The ``private`` scenario is the free job encrypted to its provider (NIP-44 v2, the default for one
target), run alternately with the public free job and printed with its ratio to it; the other three are public
jobs (``.with_encryption(False)``). A micro-benchmark compares NIP-44 v2 with NIP-04 (baseline) on
one 200-character prompt, encrypt + decrypt.

Target: overhead p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import dsrs
from dsrs_pylon import PylonLM
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.testing import Ledger, LoopbackRelay, NwcWalletService

TARGET_P50_MS = 50.0
SCENARIOS = ("free", "paid", "slow", "private")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def serve(relay_url: str) -> None:
    """The provider process: three DVMs and a wallet service, until SIGTERM; then print timings."""
    ledger = Ledger()
    ledger.account("customer", 10**12)
    provider = ledger.account("provider")
    dvms = {
        "free": DvmService(dsrs.LM("fake:echo"), [relay_url], announce=False),
        "paid": DvmService(dsrs.LM("fake:echo"), [relay_url], price_msats=21, wallet=provider, announce=False),
        "slow": DvmService(dsrs.LM("fake:echo", delay=0.02), [relay_url], announce=False),
    }
    wallet = NwcWalletService(ledger, [relay_url])
    await wallet.start()
    for dvm in dvms.values():
        await dvm.start()
    info = {name: dvm.public_key for name, dvm in dvms.items()}
    info["nwc_uri"] = wallet.connection_uri("customer")
    print(json.dumps(info), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    timings = {jid: s for dvm in dvms.values() for jid, s in dvm.stats.processing_s.items()}
    for dvm in dvms.values():
        await dvm.stop()
    await wallet.stop()
    print(json.dumps({"processing_s": timings, "paid_msats": ledger.paid_total("customer")}), flush=True)


async def run_client(relay_url: str, info: dict[str, str], n: int, warmup: int) -> dict[str, list[tuple[str, float]]]:
    os.environ["PYLON_NWC_URI"] = info["nwc_uri"]
    lms = {}
    for name in SCENARIOS:
        dvm = info["free" if name == "private" else name]
        lm = PylonLM.new_swarm(relay_url).with_targets(dvm).with_timeout(10).with_encryption(name == "private")
        lms[name] = lm.with_budget_msats(10**9) if name == "paid" else lm
    out: dict[str, list[tuple[str, float]]] = {name: [] for name in SCENARIOS}
    # The free job and its private twin alternate job by job, so machine load hits both alike.
    for group in (("free", "private"), ("paid",), ("slow",)):
        for i in range(warmup + n):
            for name in group:
                t0 = time.perf_counter()
                r = await lms[name].acall(f"benchmark prompt number {i}")
                if i >= warmup:
                    out[name].append((r.usage.detail["job_id"], time.perf_counter() - t0))
    return out


def cipher_bench(rounds: int = 2_000) -> None:
    """NIP-44 v2 against NIP-04 (baseline): encrypt + decrypt of one prompt, keys already derived for NIP-44."""
    from dsrs_pylon import nip04, nip44
    from dsrs_pylon.keys import Keys

    alice, bob = Keys.generate(), Keys.generate()
    text = "benchmark prompt " * 12  # ~200 characters
    key = alice.conversation_key(bob.public_key)

    def per_op(fn: object) -> float:
        assert callable(fn)
        fn()
        t0 = time.perf_counter()
        for _ in range(rounds):
            fn()
        return (time.perf_counter() - t0) / rounds * 1e6

    v04 = per_op(lambda: nip04.decrypt(bob, alice.public_key, nip04.encrypt(alice, bob.public_key, text)))
    v44 = per_op(lambda: nip44.decrypt(nip44.encrypt(text, key), key))
    v44_ecdh = per_op(lambda: nip44.decrypt(nip44.encrypt(text, alice.conversation_key(bob.public_key)), key))
    print(f"cipher, {len(text)}-char prompt, encrypt + decrypt ({rounds} rounds):")
    print(f"  NIP-04 (ECDH each way)        {v04:8.1f} us/op  (baseline)")
    print(f"  NIP-44 v2, conversation key   {v44:8.1f} us/op  ({v44 / v04:.2f}x)")
    print(f"  NIP-44 v2, + ECDH/HKDF        {v44_ecdh:8.1f} us/op  ({v44_ecdh / v04:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", metavar="RELAY_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    n, warmup = (50, 5) if args.quick else (300, 20)
    with LoopbackRelay() as relay:
        worker = subprocess.Popen([sys.executable, __file__, "--serve", relay.url], stdout=subprocess.PIPE, text=True)
        try:
            assert worker.stdout is not None
            info = json.loads(worker.stdout.readline())
            samples = asyncio.run(run_client(relay.url, info, n, warmup))
        finally:
            worker.send_signal(signal.SIGTERM)
            tail, _ = worker.communicate(timeout=30)
        report = json.loads(tail.strip().splitlines()[-1])
    processing: dict[str, float] = report["processing_s"]
    labels = {
        "free": "free job",
        "paid": "paid job (21 msats, NWC)",
        "slow": "free job, 20 ms model",
        "private": "free job, NIP-44 private",
    }
    print(f"relay: nostr-sdk LocalRelay on 127.0.0.1; {n} sequential jobs per scenario after {warmup} warm-up")
    print(f"{'scenario':<26} {'round trip p50':>15} {'DVM p50':>9} {'overhead p50':>13} {'p90':>9} {'p99':>9}")
    worst = 0.0
    p50s: dict[str, float] = {}
    for name in SCENARIOS:
        totals = [t * 1000 for _, t in samples[name]]
        dvm = [processing[j] * 1000 for j, _ in samples[name]]
        over = [(t - processing[j]) * 1000 for j, t in samples[name]]
        p50 = p50s[name] = statistics.median(over)
        worst = max(worst, p50)
        ratio = f"  ({p50 / p50s['free']:.2f}x free job)" if name != "free" else "  (baseline)"
        print(
            f"{labels[name]:<26} {statistics.median(totals):>12.2f} ms {statistics.median(dvm):>6.2f} ms"
            f" {p50:>10.2f} ms {pct(over, 0.9):>6.2f} ms {pct(over, 0.99):>6.2f} ms{ratio}"
        )
    cipher_bench()
    paid_expected = 21 * (n + warmup)
    print(f"paid through NWC: {report['paid_msats']} msats (expected {paid_expected})")
    ok = worst <= TARGET_P50_MS and report["paid_msats"] == paid_expected
    print(f"target: overhead p50 <= {TARGET_P50_MS:g} ms -> {'PASS' if ok else 'FAIL'} (worst p50 {worst:.2f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
