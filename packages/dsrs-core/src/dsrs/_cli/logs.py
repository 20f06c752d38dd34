"""``dsrs logs``: the opt-in prompt log (``dsrs logs on|off|status|path``, ``dsrs logs -n 10``)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from typing import Any

from dsrs._cli._exit import UsageError
from dsrs._cli._output import print_json, safe

__all__ = ["add_logs", "cmd_logs"]


def add_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=("list", "on", "off", "status", "path"),
        help="list (default) the newest entries; on/off: log every call from now on or stop; status; path",
    )
    p.add_argument("-n", "--count", type=int, default=3, help="how many of the newest entries (default 3; 0: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_logs(args: argparse.Namespace) -> int:
    from dsrs import _calllog

    if args.action in ("on", "off"):
        flag = _calllog.set_enabled(args.action == "on")
        on, why = _calllog.state()
        print(f"prompt log {'on' if on else 'off'} for new processes ({why}); entries go to {_calllog.default_path()}")
        if (args.action == "on") != on:
            print(f"note: DSRS_LOG in this environment overrides the flag file {flag}")
        return 0
    if args.action == "status":
        on, why = _calllog.state()
        count = _calllog.count_logs()
        status = {"on": on, "why": why, "path": str(_calllog.default_path()), "entries": count}
        if args.json:
            print_json(status)
        else:
            print(f"prompt log: {'on' if on else 'off'} ({why})\nfile: {status['path']}\nentries: {count}")
        return 0
    if args.action == "path":
        print(_calllog.default_path())
        return 0
    if args.count < 0:
        raise UsageError(f"-n must be >= 0, got {args.count}")
    entries = _calllog.read_logs(limit=args.count)
    if args.json:
        print_json(entries)
        return 0
    if not entries:
        on, why = _calllog.state()
        print("(no prompt log entries)" + ("" if on else f" — the log is off: {why}"))
        return 0
    for entry in entries:
        print(_format(entry))
    return 0


def _messages(request: Any) -> list[tuple[str, str]]:
    if not isinstance(request, dict):
        return [("request", str(request))] if request else []
    out = []
    for m in request.get("messages") or []:
        if isinstance(m, dict):
            content = m.get("content")
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            out.append((str(m.get("role", "?")), text))
    return out


def _format(entry: dict[str, Any]) -> str:
    when = _dt.datetime.fromtimestamp(entry["ts"], _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = [f"## {when}  {entry['provider']}:{entry['model']}"]
    if entry.get("lane"):
        head.append(f"lane {entry['lane']}")
    if entry.get("duration_s") is not None:
        head.append(f"{entry['duration_s'] * 1000:.0f} ms")
    if entry.get("request_id"):
        head.append(f"id {entry['request_id']}")
    lines = ["  ".join(head)]
    for role, text in _messages(entry.get("request")):
        lines.append(f"### {role}\n{text}")
    if entry.get("error"):
        lines.append(f"### error\n{entry['error']}")
    else:
        lines.append(f"### answer\n{entry.get('response') or ''}")
    usage = entry.get("usage")
    if isinstance(usage, dict):
        cost = "unknown" if usage.get("cost_msats") is None else f"{usage['cost_msats']} msats"
        lines.append(f"-- tokens {usage.get('prompt_tokens')} in / {usage.get('completion_tokens')} out  cost {cost}")
    return safe("\n".join(lines)) + "\n"
