"""``dsrs cache stats|clear``: the response cache."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from dsrs._cli._output import print_json

__all__ = ["add_cache", "cmd_cache"]


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
        print_json(stats)
    else:
        _print_cache_stats(stats)
    return 0
