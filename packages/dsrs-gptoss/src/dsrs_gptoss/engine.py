"""The prebuilt llama.cpp engine: llama.cpp's own HTTP server from the ``xllamacpp`` wheel, as a process.

Run as ``python -m dsrs_gptoss.engine --model M.gguf --port P [llama-server flags]``: it takes the
subset of ``llama-server``'s command line that :class:`dsrs_gptoss.server.LlamaServer` writes, serves
the same HTTP API (``/health``, ``/v1/chat/completions``, ``/completion``, ...) until SIGTERM/SIGINT,
and exits when the process that started it is gone (``--parent-pid``), so a killed caller leaves no
server behind. Being a process of its own keeps the caller's event loop and GIL out of generation and
gives both engines one lifecycle (free port, health wait, log file, clean stop).

Exit codes: 0 stopped, 2 bad command line, 3 the installed xllamacpp lacks something the provider
relies on (json_schema, GBNF grammars, Jinja templates, the reasoning split), 4 the model did not load.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

__all__ = [
    "SUPPORTED",
    "SUPPORTED_SPEC",
    "EngineCheckError",
    "available",
    "installed_version",
    "check_version",
    "check_engine",
    "main",
]

#: The xllamacpp releases this module was written against (same range as the package's pyproject).
SUPPORTED = ((2026, 10), (2027, 0))
SUPPORTED_SPEC = ">=2026.10,<2027"
# CommonParams fields set below; a release that renames one fails the start check, not mid-request.
_PARAMS = (
    *("port", "hostnames", "n_ctx", "n_parallel", "n_batch", "n_ubatch", "cont_batching", "use_jinja"),
    *("reasoning_format", "model_alias", "warmup", "kv_unified"),
)
_PROBE_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


class EngineCheckError(RuntimeError):
    """The installed xllamacpp cannot serve what the gptoss provider relies on."""


def available() -> bool:
    """xllamacpp is installed in this interpreter (found without importing its 100 MB library)."""
    return importlib.util.find_spec("xllamacpp") is not None


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("xllamacpp")
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def check_version(version: str | None = None) -> str:
    """The installed version when it is in :data:`SUPPORTED`; else :class:`EngineCheckError` naming both."""
    version = version if version is not None else installed_version()
    if version is None:
        raise EngineCheckError("xllamacpp is not installed: pip install 'dsrs-gptoss' (it depends on it)")
    low, high = SUPPORTED
    if not low <= _release(version) < high:
        raise EngineCheckError(
            f"xllamacpp {version} is outside the supported range {SUPPORTED_SPEC}: "
            f"pip install 'xllamacpp{SUPPORTED_SPEC}'"
        )
    return version


def check_engine(xllamacpp: Any) -> None:
    """Fail with the missing piece when this xllamacpp cannot serve the provider's requests."""
    params = xllamacpp.CommonParams()
    missing = [name for name in _PARAMS if not hasattr(params, name)]
    missing += [f"cpuparams.{n}" for n in ("n_threads", "poll") if not hasattr(params.cpuparams, n)]
    missing += [f"cpuparams_batch.{n}" for n in ("n_threads", "poll") if not hasattr(params.cpuparams_batch, n)]
    if not hasattr(params, "model") or not hasattr(params.model, "path"):
        missing.append("model.path")
    if missing:
        raise EngineCheckError(f"xllamacpp.CommonParams has no {', '.join(missing)} (Jinja, slots or threads)")
    formats = getattr(xllamacpp, "common_reasoning_format", None)
    if formats is None or not hasattr(formats, "COMMON_REASONING_FORMAT_AUTO"):
        raise EngineCheckError("xllamacpp has no reasoning_format 'auto': reasoning would not be split")
    convert = getattr(xllamacpp, "json_schema_to_grammar", None)
    grammar = convert(_PROBE_SCHEMA) if callable(convert) else ""
    if not isinstance(grammar, str) or not grammar.strip():
        raise EngineCheckError("xllamacpp cannot convert a JSON schema to a grammar (response_format json_schema)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dsrs_gptoss.engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", "-m", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ctx-size", "-c", type=int, default=4096, help="total context, shared by the slots")
    p.add_argument("--threads", "-t", type=int, default=-1)
    p.add_argument("--threads-batch", "-tb", type=int, default=-1)
    p.add_argument("--parallel", "-np", type=int, default=1)
    p.add_argument("--batch-size", "-b", type=int, default=None)
    p.add_argument("--ubatch-size", "-ub", type=int, default=None)
    p.add_argument("--poll", type=int, default=None, help="0-100: how much idle ggml threads spin (0 = yield)")
    p.add_argument("--poll-batch", type=int, default=None)
    p.add_argument("--kv-unified", "-kvu", action="store_true", help="one KV pool shared by the slots")
    p.add_argument("--cont-batching", dest="cont_batching", action="store_true", default=True)
    p.add_argument("--no-cont-batching", dest="cont_batching", action="store_false")
    p.add_argument("--alias", "-a", default=None)
    p.add_argument("--jinja", action="store_true")
    p.add_argument("--reasoning-format", choices=("auto", "none", "deepseek"), default="auto")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    p.add_argument("--check", action="store_true", help="only check the engine, then exit (0 = usable)")
    return p


def _params(xllamacpp: Any, args: argparse.Namespace) -> Any:
    p = xllamacpp.CommonParams()
    p.model.path = args.model
    p.hostnames = [args.host]
    p.port = args.port
    p.n_ctx = args.ctx_size
    p.n_parallel = max(1, args.parallel)
    p.cont_batching = args.cont_batching
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads_batch
    if args.poll is not None:
        p.cpuparams.poll = args.poll
    if args.poll_batch is not None:
        p.cpuparams_batch.poll = args.poll_batch
    p.kv_unified = args.kv_unified
    if args.batch_size:
        p.n_batch = args.batch_size
    if args.ubatch_size:
        p.n_ubatch = args.ubatch_size
    p.use_jinja = args.jinja
    formats = xllamacpp.common_reasoning_format
    p.reasoning_format = {
        "auto": formats.COMMON_REASONING_FORMAT_AUTO,
        "none": formats.COMMON_REASONING_FORMAT_NONE,
        "deepseek": formats.COMMON_REASONING_FORMAT_DEEPSEEK,
    }[args.reasoning_format]
    if args.alias:
        p.model_alias = {args.alias}
    if args.no_warmup:
        p.warmup = False
    return p


def _fail(code: int, message: str) -> int:
    print(f"dsrs-gptoss engine: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        version = check_version()
        xllamacpp = importlib.import_module("xllamacpp")  # untyped extension module: Any
        check_engine(xllamacpp)
    except EngineCheckError as exc:
        return _fail(3, str(exc))
    if args.check:
        print(f"xllamacpp {version}: ok")
        return 0
    if not os.path.isfile(args.model):
        return _fail(4, f"model file {args.model} does not exist")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"dsrs-gptoss engine: xllamacpp {version}, model {args.model}", file=sys.stderr, flush=True)
    try:
        server = xllamacpp.Server(_params(xllamacpp, args))
    except RuntimeError as exc:  # the reason (bad GGUF, port in use, ...) is in llama.cpp's log above
        return _fail(4, f"llama.cpp did not start: {exc}")
    parent = args.parent_pid
    while not stop.wait(0.5):
        if parent is not None and os.getppid() != parent:
            break  # the caller died without stopping us (SIGKILL, OOM): do not outlive it
    del server  # stops the HTTP server and frees the model
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
