"""The ``dsrs`` command line: ``dsrs providers``, ``dsrs ask``, and friends.

Each subcommand is one ``cmd_*`` function plus its ``add_*`` argument setup, registered in
:data:`COMMANDS`. Errors print one line to stderr and exit non-zero; no tracebacks for user mistakes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


# --- dsrs providers ----------------------------------------------------------------------------


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
        _print_json(rows)
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


# --- dsrs ask ----------------------------------------------------------------------------------


def add_ask(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="the question")
    p.add_argument("--model", "-m", default=None, help="model string (default: $DSRS_MODEL, else fake:echo)")
    p.add_argument("--base-url", default=None, help="server base URL (any OpenAI-compatible server)")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    p.add_argument("--json", action="store_true", help="print the response and usage as JSON")


def cmd_ask(args: argparse.Namespace) -> int:
    import os

    import dsrs

    model = args.model or os.environ.get("DSRS_MODEL") or "fake:echo"
    lm = dsrs.LM(model, base_url=args.base_url, max_tokens=args.max_tokens, temperature=args.temperature)
    if args.stream and not args.json:
        stream = lm.stream(args.prompt)
        for delta in stream:
            print(delta, end="", flush=True)
        print()
        response = stream.response
        assert response is not None
    else:
        response = lm.call(args.prompt)
    if args.json:
        _print_json(response.to_dict())
        return 0
    if not args.stream:
        print(response.text)
    u = response.usage
    cost = "unknown" if u.cost_msats is None else f"{u.cost_msats} msats (${u.cost_usd:.6f})"
    print(
        f"-- {response.provider}:{response.model}  tokens {u.prompt_tokens} in / {u.completion_tokens} out"
        f" / {u.total_tokens} total  cost {cost}{'  (cache hit)' if u.cache_hit else ''}",
        file=sys.stderr,
    )
    return 0


# --- dsrs usage --------------------------------------------------------------------------------


def add_usage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--days", type=int, default=None, help="only the last N UTC days (default: all)")
    p.add_argument("--by", default="day,provider,lane", help="group by (comma list of day, provider, lane, model)")
    p.add_argument("--redis-url", default=None, help="Redis URL (default: $DSRS_REDIS_URL)")
    p.add_argument("--namespace", default=None, help="key namespace (default: $DSRS_REDIS_NAMESPACE, else dsrs)")


def cmd_usage(args: argparse.Namespace) -> int:
    try:
        from dsrs._redis_state.report import run_usage
    except ImportError as exc:
        print(f"dsrs: {exc}", file=sys.stderr)
        return 2
    return run_usage(args)


# --- dsrs cache --------------------------------------------------------------------------------


def add_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("stats", "clear"), help="show entry counts and location, or delete every entry")
    p.add_argument("--json", action="store_true", help="machine-readable output (stats)")


def _print_cache_stats(stats: dict[str, Any], indent: str = "") -> None:
    for key, value in stats.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_cache_stats(value, indent + "  ")
        elif key == "bytes" and isinstance(value, int):
            print(f"{indent}{key}: {value} ({value / 1024:.1f} KiB)")
        else:
            print(f"{indent}{key}: {value}")


def cmd_cache(args: argparse.Namespace) -> int:
    from dsrs._cache import get_cache

    cache = get_cache()
    if args.action == "clear":
        asyncio.run(cache.aclear())
        print("cache cleared")
        return 0
    stats = asyncio.run(cache.astats())
    if args.json:
        _print_json(stats)
    else:
        _print_cache_stats(stats)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {
    "providers": (add_providers, cmd_providers, "list installed providers: configured? reachable?"),
    "ask": (add_ask, cmd_ask, "ask a model one question and print the answer, tokens and cost"),
    "usage": (add_usage, cmd_usage, "tokens, cost and calls per day/provider/lane from the shared Redis ledger"),
    "cache": (add_cache, cmd_cache, "response cache: 'stats' (entries, size, location) or 'clear'"),
}


def build_parser() -> argparse.ArgumentParser:
    from dsrs import __version__

    parser = argparse.ArgumentParser(prog="dsrs", description="dsrs: language-model providers as plugins")
    parser.add_argument("--version", action="version", version=f"dsrs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dsrs.errors import LMError

    try:
        code: int = args.run(args)
        return code
    except LMError as exc:
        print(f"dsrs: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"dsrs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
