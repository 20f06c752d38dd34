"""The ``dsrs`` command line: ``dsrs ask``, ``models``, ``providers``, ``usage``, ``logs``, ``keys``, ``cache``.

Each subcommand is a module with an ``add_*`` (its arguments) and a ``cmd_*`` (it runs, returns the
exit code), registered in :data:`COMMANDS`. Failures print one line to stderr, never a traceback,
and exit with the code of their class (:mod:`dsrs._cli._exit`); a closed stdout exits quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from dsrs._cli._exit import BROKEN_PIPE, INTERRUPTED, USAGE, UsageError, exit_code
from dsrs._cli.ask import add_ask, cmd_ask
from dsrs._cli.cache import add_cache, cmd_cache
from dsrs._cli.keys import add_keys, cmd_keys
from dsrs._cli.logs import add_logs, cmd_logs
from dsrs._cli.models import add_models, cmd_models
from dsrs._cli.providers import add_providers, cmd_providers
from dsrs._cli.usage import add_usage, cmd_usage

__all__ = ["COMMANDS", "build_parser", "main"]

Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]

COMMANDS: dict[str, Command] = {
    "ask": (add_ask, cmd_ask, "ask the best reachable model one question; the answer streams, then tokens and cost"),
    "models": (add_models, cmd_models, "models per provider (defaults and live /models) with price and its source"),
    "providers": (add_providers, cmd_providers, "list installed providers: configured? reachable?"),
    "usage": (add_usage, cmd_usage, "tokens, cost and calls from the local ledger (or the shared Redis one)"),
    "logs": (add_logs, cmd_logs, "the opt-in prompt log: newest entries, or 'on' / 'off' / 'status' / 'path'"),
    "keys": (add_keys, cmd_keys, "API keys stored in a 0600 file, read after the environment: set/list/unset/path"),
    "cache": (add_cache, cmd_cache, "response cache: 'stats' (entries, size, location) or 'clear'"),
}

_EPILOG = (
    "exit codes: 0 ok, 1 other failure, 2 usage error, 3 authentication, 4 rate limited, 5 budget or quota,"
    " 6 unreachable or timed out, 7 request refused, 8 bad response, 130 interrupted, 141 stdout closed"
)


def build_parser() -> argparse.ArgumentParser:
    from dsrs import __version__

    parser = argparse.ArgumentParser(
        prog="dsrs", description="dsrs: language-model providers as plugins", epilog=_EPILOG
    )
    parser.add_argument("--version", action="version", version=f"dsrs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=_EPILOG)
        add(p)
        p.set_defaults(run=run)
    return parser


def _quiet_stdout() -> None:
    # The reader went away: point stdout at /dev/null so the interpreter's final flush does not
    # print "Exception ignored ... BrokenPipeError" on its way out.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``dsrs`` command line and return its exit code."""
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        return INTERRUPTED
    except SystemExit as exc:  # argparse: --help / --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else USAGE
    except UsageError as exc:
        return _fail(f"dsrs: error: {exc}", USAGE)
    except Exception as exc:
        from dsrs.errors import LMError

        if isinstance(exc, LMError):
            return _fail(f"dsrs: {type(exc).__name__}: {exc}", exit_code(exc))
        if isinstance(exc, ValueError):  # a bad value (an option, an environment variable)
            return _fail(f"dsrs: error: {exc}", USAGE)
        if isinstance(exc, OSError):
            return _fail(f"dsrs: error: {type(exc).__name__}: {exc}", exit_code(exc))
        raise


def _fail(message: str, code: int) -> int:
    try:
        print(message, file=sys.stderr)
    except BrokenPipeError:  # pragma: no cover - stderr closed too
        pass
    return code
