"""``dsrs usage``: the shared usage ledger (and budgets) of a Redis namespace, as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
from collections.abc import Sequence
from typing import Any

from dsrs._redis_state.budget import BudgetSnapshot
from dsrs._redis_state.state import RedisState

__all__ = ["format_usage", "run_usage", "usage_report"]

_COLUMNS = (
    ("calls", "calls"),
    ("cache_hits", "hits"),
    ("prompt_tokens", "tokens in"),
    ("completion_tokens", "tokens out"),
    ("cost_msats", "cost msats"),
)


async def _budgets(state: RedisState) -> list[BudgetSnapshot]:
    try:
        return await state.budgets.snapshot()
    finally:
        await state.link.aclose()


def usage_report(
    state: RedisState, *, by: Sequence[str] = ("day", "provider", "lane"), days: int | None = None
) -> dict[str, Any]:
    """The ledger summed by ``by`` over the last ``days`` UTC days (all when None), plus budgets."""
    since = None
    if days is not None:
        since = (_dt.datetime.now(_dt.timezone.utc).date() - _dt.timedelta(days=max(days, 1) - 1)).isoformat()
    rows = state.ledger.summary(by=by, since=since)
    total = state.ledger.total(since=since)
    budgets = asyncio.run(_budgets(state))
    return {
        "redis": state.settings.safe_url,
        "namespace": state.settings.namespace,
        "since": since,
        "by": list(by),
        "rows": [
            {k: v for k, v in r.to_dict().items() if k not in ("day", "provider", "lane", "model") or k in by}
            for r in rows
        ],
        "total": {k: v for k, v in total.to_dict().items() if k not in ("day", "provider", "lane", "model")},
        "budgets": [b.to_dict() for b in budgets],
    }


def format_usage(report: dict[str, Any]) -> str:
    by: list[str] = report["by"]
    widths = {"day": 10, "provider": 16, "lane": 12, "model": 24}
    head = (
        [f"{name:<{widths[name]}}" for name in by] + [f"{label:>11}" for _, label in _COLUMNS] + [f"{'cost usd':>12}"]
    )
    lines = [
        f"usage ledger in {report['redis']} namespace {report['namespace']!r}"
        + (f" since {report['since']}" if report["since"] else ""),
        "  ".join(head),
    ]

    def line(cells: list[str], row: dict[str, Any]) -> str:
        nums = [f"{int(row.get(key, 0)):>11}" for key, _ in _COLUMNS] + [f"{row.get('cost_usd', 0.0):>12.6f}"]
        return "  ".join(cells + nums)

    for row in report["rows"]:
        lines.append(line([f"{(row.get(name) or '-'):<{widths[name]}}" for name in by], row))
    if not report["rows"]:
        lines.append("(no calls recorded)")
    total_cells = [f"{'total':<{widths[by[0]]}}"] + [" " * widths[name] for name in by[1:]] if by else []
    lines.append(line(total_cells, report["total"]))
    if report["budgets"]:
        lines.append("")
        lines.append(
            f"{'budget':<20}  {'limit msats':>12}  {'spent':>12}  {'reserved':>10}  {'remaining':>12}  {'refused':>8}"
        )
        for b in report["budgets"]:
            limit = "-" if b["limit_msats"] is None else str(b["limit_msats"])
            remaining = "-" if b["remaining_msats"] is None else str(b["remaining_msats"])
            lines.append(
                f"{b['scope']:<20}  {limit:>12}  {b['spent_msats']:>12}  {b['reserved_msats']:>10}  {remaining:>12}  {b['refused']:>8}"
            )
    return "\n".join(lines)


def run_usage(args: argparse.Namespace) -> int:
    """The ``dsrs usage`` subcommand (arguments defined in :mod:`dsrs._cli`)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "namespace", None):
        overrides["namespace"] = args.namespace
    state = RedisState(getattr(args, "redis_url", None), **overrides)
    try:
        by = tuple(p.strip() for p in (getattr(args, "by", None) or "day,provider,lane").split(",") if p.strip())
        report = usage_report(state, by=by, days=getattr(args, "days", None))
    finally:
        state.close()
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
    else:
        print(format_usage(report))
    return 0
