"""``dsrs providers``: every installed provider, configured? reachable?"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from typing import Any

from dsrs._cli._output import print_json

__all__ = ["add_providers", "cmd_providers"]


def add_providers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=2.0, help="probe timeout in seconds (default 2)")
    p.add_argument("--no-probe", action="store_true", help="list only; do not check reachability")


async def _probe_all(timeout: float, probe: bool) -> list[dict[str, Any]]:
    import dsrs
    from dsrs._provider import ProbeResult

    specs = dsrs.providers()

    async def one(spec: dsrs.ProviderSpec) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": spec.name,
            "distribution": spec.distribution,
            "version": spec.version,
            "tier": spec.tier,
            "prefixes": list(spec.all_prefixes()),
            "env_vars": list(spec.env_vars),
            "description": spec.description,
            "status": "ok",
        }
        try:
            cls = spec.load()
        except Exception as exc:
            row.update(status="broken", detail=f"cannot import {spec.factory}: {type(exc).__name__}: {exc}")
            return row
        if not probe:
            return row
        try:
            result: ProbeResult = await asyncio.wait_for(cls.probe(spec, timeout), timeout + 0.5)
        except asyncio.TimeoutError:
            result = ProbeResult(True, False, None, f"probe timed out after {timeout:g}s")
        except Exception as exc:
            result = ProbeResult(False, False, None, f"probe failed: {type(exc).__name__}: {exc}")
        row.update(
            configured=result.configured,
            reachable=result.reachable,
            latency_ms=round(result.latency_ms, 1) if result.latency_ms is not None else None,
            detail=result.detail,
        )
        return row

    return list(await asyncio.gather(*(one(s) for s in specs)))


def _yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "-"


def cmd_providers(args: argparse.Namespace) -> int:
    from dsrs._registry import get_registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = asyncio.run(_probe_all(args.timeout, not args.no_probe))
        broken_plugins = get_registry().broken
    for name, err in broken_plugins:
        rows.append({"name": name, "distribution": None, "status": "broken", "detail": err})
    if args.json:
        print_json(rows)
        return 0
    print(f"{'provider':<18} {'tier':<9} {'distribution':<24} {'configured':<11} {'reachable':<10} detail")
    for r in rows:
        dist = f"{r.get('distribution') or '?'} {r.get('version') or ''}".strip()
        if r["status"] == "broken":
            print(f"{r['name']:<18} {'-':<9} {dist:<24} {'BROKEN':<11} {'-':<10} {r.get('detail', '')}")
            continue
        conf, reach = _yes_no(r.get("configured")), _yes_no(r.get("reachable"))
        if r.get("latency_ms") is not None and r.get("reachable"):
            reach += f" {r['latency_ms']:.0f}ms"
        print(f"{r['name']:<18} {r['tier']:<9} {dist:<24} {conf:<11} {reach:<10} {r.get('detail', '')}")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return 0
