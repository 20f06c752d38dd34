"""``dsrs usage``: tokens, cost and calls from the local ledger, or from the shared Redis one.

The local ledger (``usage.sqlite3`` beside the cache) holds every call this machine made. When a
Redis URL is given (``--redis-url`` or ``$DSRS_REDIS_URL``) the shared ledger of that namespace is
shown instead, since it holds every process's calls; ``--local`` shows this machine's anyway.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
from typing import Any

from dsrs._cli._exit import UsageError
from dsrs._cli._output import print_json, safe

__all__ = ["add_usage", "cmd_usage", "parse_since"]

_DEFAULT_BY = "day,provider,lane"
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_COLUMNS = (
    ("calls", "calls"),
    ("errors", "errors"),
    ("cache_hits", "hits"),
    ("prompt_tokens", "tokens in"),
    ("completion_tokens", "tokens out"),
    ("cost_msats", "cost msats"),
)


def add_usage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--since", default=None, help="only calls since: 2026-01-31, 2026-01-31T12:00, or an age like 30m, 24h, 7d, 2w"
    )
    p.add_argument("--days", type=int, default=None, help="only the last N UTC days (same as --since Nd, by day)")
    p.add_argument(
        "--by", default=None, help=f"group by a comma list of day, provider, lane, model, error (default {_DEFAULT_BY})"
    )
    p.add_argument("--local", action="store_true", help="this machine's ledger even when a Redis URL is set")
    p.add_argument("--redis-url", default=None, help="the shared ledger in Redis (default: $DSRS_REDIS_URL)")
    p.add_argument("--namespace", default=None, help="Redis key namespace (default: $DSRS_REDIS_NAMESPACE, else dsrs)")


def parse_since(text: str, now: float | None = None) -> float:
    """``--since`` as an epoch time: an ISO date or datetime (UTC unless it names a zone) or an age."""
    value = text.strip()
    match = _RELATIVE.fullmatch(value.lower())
    if match:
        now = _dt.datetime.now(_dt.timezone.utc).timestamp() if now is None else now
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a date (2026-01-31), a datetime (2026-01-31T12:00) or an age (30m, 24h, 7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp()


def _by(args: argparse.Namespace, allowed: tuple[str, ...]) -> tuple[str, ...]:
    by = tuple(p.strip() for p in (args.by or _DEFAULT_BY).split(",") if p.strip())
    for name in by:
        if name not in allowed:
            raise UsageError(f"--by {args.by!r}: {name!r} is not one of {', '.join(allowed)}")
    return by


def cmd_usage(args: argparse.Namespace) -> int:
    if args.days is not None and args.days < 1:
        raise UsageError(f"--days must be >= 1, got {args.days}")
    if args.days is not None and args.since is not None:
        raise UsageError("give --since or --days, not both")
    redis_url = args.redis_url or os.environ.get("DSRS_REDIS_URL")
    if redis_url and not args.local:
        return _redis_usage(args)
    from dsrs._ledger import GROUPS, ledger_enabled, usage_summary

    by = _by(args, tuple(GROUPS))
    since = None
    if args.since is not None:
        since = parse_since(args.since)
    elif args.days is not None:
        start = _dt.datetime.now(_dt.timezone.utc).date() - _dt.timedelta(days=args.days - 1)
        since = _dt.datetime.combine(start, _dt.time(), tzinfo=_dt.timezone.utc).timestamp()
    report = usage_summary(by=by, since=since)
    report["recording"] = ledger_enabled()
    if args.json:
        print_json(report)
    else:
        print(format_local(report))
    return 0


def _redis_usage(args: argparse.Namespace) -> int:
    if args.since is not None:
        raise UsageError("--since works with the local ledger; the Redis ledger keeps days: use --days N")
    try:
        from dsrs._redis_state.report import run_usage
    except ImportError as exc:
        raise UsageError(f"{exc} (or use --local for this machine's ledger)") from None
    _by(args, ("day", "provider", "lane", "model"))
    args.by = args.by or _DEFAULT_BY
    return run_usage(args)


def format_local(report: dict[str, Any]) -> str:
    by: list[str] = report["by"]
    widths = {name: max([len(name), 5, *(len(str(r.get(name) or "-")) for r in report["rows"])]) for name in by}
    since = report["since"]
    when = (
        " since " + _dt.datetime.fromtimestamp(since, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if since is not None
        else ""
    )
    lines = [f"usage ledger {report['ledger']}{when}"]
    if not report.get("recording", True):
        lines.append("(recording is off: DSRS_LEDGER=0)")
    lines.append(
        "  ".join([f"{name:<{widths[name]}}" for name in by] + [f"{label:>10}" for _, label in _COLUMNS])
        + f"  {'cost usd':>12}"
    )

    def line(cells: list[str], row: dict[str, Any]) -> str:
        nums = [f"{int(row.get(key, 0)):>10}" for key, _ in _COLUMNS]
        unpriced = f"  ({row['unpriced_calls']} unpriced)" if row.get("unpriced_calls") else ""
        return "  ".join(cells + nums) + f"  {row.get('cost_usd', 0.0):>12.6f}{unpriced}"

    for row in report["rows"]:
        lines.append(line([f"{safe(row.get(name) or '-', newlines=False):<{widths[name]}}" for name in by], row))
    if not report["rows"]:
        lines.append("(no calls recorded)")
    cells = [f"{'total':<{widths[by[0]]}}", *(" " * widths[name] for name in by[1:])] if by else ["total"]
    lines.append(line(cells, report["total"]))
    return "\n".join(lines)
