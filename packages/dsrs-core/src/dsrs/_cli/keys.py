"""``dsrs keys set|list|unset|path``: API keys in a 0600 file, read after the environment.

``dsrs keys set openai`` stores the key under the provider's key variable (``OPENAI_API_KEY``);
any variable name works too (``dsrs keys set GROQ_API_KEY``). The value is read from stdin, or
prompted for without echo on a terminal: never from the command line, where shell history and
``ps`` would see it. ``list`` shows names and masked values only.
"""

from __future__ import annotations

import argparse
import os
import sys

from dsrs._cli._exit import UsageError
from dsrs._cli._output import print_json, read_stdin

__all__ = ["add_keys", "cmd_keys", "resolve_name"]


def add_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=("set", "list", "unset", "path"), help="store, list (masked), remove, or show the file"
    )
    p.add_argument("name", nargs="?", help="provider name (openai) or variable name (OPENAI_API_KEY)")
    p.add_argument("--json", action="store_true", help="machine-readable output (list)")


def _key_vars(env_vars: tuple[str, ...]) -> list[str]:
    return [v for v in env_vars if "KEY" in v.upper() or "TOKEN" in v.upper()]


def resolve_name(name: str) -> str:
    """A provider name becomes its key variable; a variable name stays as it is."""
    import dsrs
    from dsrs._keys import check_name

    specs = {s.name: s for s in dsrs.providers()}
    spec = specs.get(name)
    if spec is not None:
        candidates = _key_vars(spec.env_vars)
        if not candidates:
            raise UsageError(
                f"provider {name!r} takes no API key"
                + (f"; its variables are {', '.join(spec.env_vars)}" if spec.env_vars else "")
            )
        return candidates[0]
    try:
        return check_name(name)
    except ValueError:
        raise UsageError(
            f"{name!r} is neither a provider ({', '.join(sorted(specs))}) nor a variable name like OPENAI_API_KEY"
        ) from None


def _read_value(var: str) -> str:
    piped = read_stdin("the key")
    if piped is not None:
        lines = [line.strip() for line in piped.splitlines() if line.strip()]
        if len(lines) != 1:
            raise UsageError(f"expected the key for {var} as one line on stdin, got {len(lines)} lines")
        return lines[0]
    import getpass

    try:
        return getpass.getpass(f"{var}: ")
    except EOFError:
        raise UsageError(f"no value for {var} (pipe it: ... | dsrs keys set {var})") from None


def cmd_keys(args: argparse.Namespace) -> int:
    from dsrs import _keys

    if args.action == "path":
        print(_keys.keys_path())
        return 0
    if args.action == "list":
        try:
            stored = _keys.load_keys(strict=True)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        rows = [
            {"name": name, "value": _keys.mask(value), "overridden_by_environment": bool(os.environ.get(name))}
            for name, value in sorted(stored.items())
        ]
        if args.json:
            print_json({"path": str(_keys.keys_path()), "keys": rows})
            return 0
        print(f"# {_keys.keys_path()}")
        if not rows:
            print("(no keys stored; `dsrs keys set openai` stores one)")
        for r in rows:
            note = "  (the environment's value is used)" if r["overridden_by_environment"] else ""
            print(f"{r['name']:<28} {r['value']}{note}")
        return 0
    if not args.name:
        raise UsageError(f"dsrs keys {args.action} needs a name: a provider (openai) or a variable (OPENAI_API_KEY)")
    var = resolve_name(args.name)
    if args.action == "unset":
        removed = _keys.delete_key(var)
        print(f"{var} {'removed from' if removed else 'was not in'} {_keys.keys_path()}")
        return 0
    value = _read_value(var)
    try:
        path = _keys.set_key(var, value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"{var} stored in {path}", file=sys.stderr)
    if os.environ.get(var):
        print(f"note: {var} is also set in this environment, and the environment wins", file=sys.stderr)
    return 0
