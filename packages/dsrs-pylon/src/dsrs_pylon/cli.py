"""``dsrs-pylon``: run a NIP-90 text-generation DVM from any dsrs LM, or show your Pylon identity.

dsrs-pylon serve --model ollama:llama3 --relay wss://relay.example --price-msats 50
dsrs-pylon whoami
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsrs-pylon", description="Pylon (Nostr NIP-90) tools for dsrs")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="sell inference from a dsrs LM as a NIP-90 kind-5050 DVM")
    serve.add_argument("--model", required=True, help="dsrs model string, e.g. ollama:llama3 or fake:echo")
    serve.add_argument("--relay", action="append", default=[], help="relay URL (repeat; default PYLON_RELAY_URL)")
    serve.add_argument("--price-msats", type=int, default=0, help="price per job in msats (0 = free)")
    serve.add_argument("--nwc-uri", default=None, help="wallet to invoice through (default PYLON_NWC_URI)")
    serve.add_argument("--payment-timeout", type=float, default=60.0)
    serve.add_argument("--name", default="dsrs DVM")
    serve.add_argument("--no-announce", action="store_true", help="do not publish a NIP-89 handler event")
    serve.add_argument(
        "--encryption",
        default="nip44_v2 nip04",
        help="schemes accepted for encrypted (private) jobs, space-separated; '' refuses them (default: %(default)s)",
    )
    serve.add_argument("--no-partials", action="store_true", help="do not stream partial results")
    sub.add_parser("whoami", help="print the npub of the configured identity (PYLON_NSEC/PYLON_MNEMONIC/key file)")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    import dsrs
    from dsrs_pylon.dvm import DvmService
    from dsrs_pylon.keys import load_keys
    from dsrs_pylon.nwc import NwcClient
    from dsrs_pylon.provider import relays_from

    relays = relays_from(args.relay or None)
    if not relays:
        print("dsrs-pylon: no relay: pass --relay or set PYLON_RELAY_URL", file=sys.stderr)
        return 2
    wallet = None
    uri = args.nwc_uri or os.environ.get("PYLON_NWC_URI", "").strip()
    if args.price_msats > 0:
        if not uri:
            print("dsrs-pylon: a priced service needs a wallet: --nwc-uri or PYLON_NWC_URI", file=sys.stderr)
            return 2
        wallet = NwcClient(uri)
        await wallet.connect()
    service = DvmService(
        dsrs.LM(args.model),
        relays,
        keys=load_keys(),
        price_msats=args.price_msats,
        wallet=wallet,
        payment_timeout=args.payment_timeout,
        name=args.name,
        announce=not args.no_announce,
        encryption=tuple(args.encryption.split()),
        partials=not args.no_partials,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    print(f"dsrs-pylon: serving {args.model} as {service.keys.npub} ({service.public_key})", flush=True)
    print(f"dsrs-pylon: relays {', '.join(relays)}; price {args.price_msats} msats; ready", flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
        if wallet is not None:
            await wallet.aclose()
        print(f"dsrs-pylon: stopped after {service.stats.completed} jobs", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from dsrs_pylon.keys import InvalidKeyError, load_keys

    try:
        if args.command == "whoami":
            keys = load_keys()
            print(f"{keys.npub} {keys.public_key} (from {keys.source})")
            return 0
        return asyncio.run(_serve(args))
    except InvalidKeyError as exc:  # a bad PYLON_NSEC / PYLON_MNEMONIC / key file: say which, no traceback
        print(f"dsrs-pylon: identity: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
