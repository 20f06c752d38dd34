"""Find, start, reuse and stop a local llama.cpp ``llama-server``.

Public API (other packages' tests use it too)::

    from dsrs_gptoss.server import LlamaServer, ensure_server

    with LlamaServer(model_path) as srv:          # a server of our own on a free port
        srv.base_url                                # "http://127.0.0.1:41234"

    handle = ensure_server("http://localhost:8000", model="gpt-oss-20b")
    handle.base_url                                 # reused, or auto-started (maybe on another port)

``ensure_server`` reuses a server that answers ``GET /health``; otherwise, for a local base URL, it
starts one (engine from :func:`find_engine`; model from ``LLAMA_MODEL_PATH`` or the discovery dirs)
and stops it when the process exits.

Engines, in order: ``LLAMA_SERVER_BIN``; a ``llama-server`` on PATH (a user's own build, e.g. for a
GPU); the one ``dsrs-gptoss install --from-source`` built; else the prebuilt engine from the
``xllamacpp`` wheel, run as ``python -m dsrs_gptoss.engine`` (:mod:`dsrs_gptoss.engine`). Both speak
llama.cpp's HTTP API and get the same lifecycle. ``GPTOSS_ENGINE=llama-server|xllamacpp`` picks one.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dsrs.errors import ProviderUnavailableError
from dsrs_gptoss import engine as prebuilt
from dsrs_gptoss import install

__all__ = [
    "DEFAULT_BASE_URL",
    "INSTALL_HINT",
    "LlamaServer",
    "LlamaServerError",
    "BinaryNotFoundError",
    "ModelNotFoundError",
    "ServerStartError",
    "ServerHandle",
    "ensure_server",
    "Engine",
    "EngineKind",
    "EngineCheckFailed",
    "find_engine",
    "find_binary",
    "find_model",
    "model_search_dirs",
    "health",
    "is_local",
    "free_port",
    "stop_started_servers",
    "stop_auto_started_servers",
    "check_capabilities",
    "capabilities_of",
    "Capabilities",
    "default_threads",
    "default_parallel",
    "DEFAULT_PARALLEL",
    "CONTEXT_BUDGET",
    "engine_supports",
]

DEFAULT_BASE_URL = "http://localhost:8000"
INSTALL_HINT = "dsrs-gptoss install"
_PROVIDER = "gptoss"


class LlamaServerError(ProviderUnavailableError):
    """llama-server could not be found, started or reached. Not retryable by waiting."""

    retryable = False

    def __init__(self, message: str, *, model: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, provider=_PROVIDER, model=model)
        self.log_tail = log_tail


class BinaryNotFoundError(LlamaServerError):
    """No ``llama-server`` executable: not in ``LLAMA_SERVER_BIN``, PATH or the install cache."""


class ModelNotFoundError(LlamaServerError):
    """No ``.gguf`` model in ``LLAMA_MODEL_PATH`` or the discovery dirs."""

    def __init__(self, message: str, *, searched: Sequence[Path], model: str | None = None) -> None:
        super().__init__(message, model=model)
        self.searched = tuple(searched)


class ServerStartError(LlamaServerError):
    """llama-server exited during start, or did not become healthy in time."""


class EngineCheckFailed(ServerStartError):
    """The engine started but does not serve what the provider relies on (json_schema, grammar, Jinja)."""


# --- discovery ------------------------------------------------------------------------------------


def find_binary() -> Path:
    """``LLAMA_SERVER_BIN``, else ``llama-server`` on PATH, else the one ``dsrs-gptoss install`` built."""
    configured = os.environ.get("LLAMA_SERVER_BIN")
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BinaryNotFoundError(
            f"LLAMA_SERVER_BIN={configured} is not an executable file. "
            f"Unset it, or get llama-server with: {INSTALL_HINT}"
        )
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    cached = install.cached_server_binary()
    if cached is not None:
        return cached
    raise BinaryNotFoundError(
        "llama-server not found (LLAMA_SERVER_BIN is unset, none on PATH, none in "
        f"{install.llama_cpp_dir() / 'bin'}). Build it with: {INSTALL_HINT} --from-source"
    )


EngineKind = Literal["llama-server", "xllamacpp"]
_ENGINE_ENV = "GPTOSS_ENGINE"


@dataclass(frozen=True)
class Engine:
    """How to run a llama.cpp HTTP server: a ``llama-server`` binary, or the xllamacpp engine module."""

    kind: EngineKind
    argv: tuple[str, ...]
    version: str = ""

    @classmethod
    def binary(cls, path: str | Path) -> Engine:
        return cls("llama-server", (str(path),))

    @classmethod
    def prebuilt(cls, python: str | None = None) -> Engine:
        """The xllamacpp engine in ``python`` (default: this interpreter)."""
        version = prebuilt.installed_version() or ""
        return cls("xllamacpp", (python or sys.executable, "-m", "dsrs_gptoss.engine"), version)

    @property
    def name(self) -> str:
        return f"xllamacpp {self.version}".strip() if self.kind == "xllamacpp" else f"llama-server {self.argv[0]}"


def _prebuilt_engine() -> Engine | None:
    if not prebuilt.available():
        return None
    try:
        prebuilt.check_version()
    except prebuilt.EngineCheckError as exc:
        raise BinaryNotFoundError(f"the prebuilt engine cannot be used: {exc}") from None
    return Engine.prebuilt()


def find_engine() -> Engine:
    """The engine to start: ``LLAMA_SERVER_BIN``, PATH, the source build, else the xllamacpp wheel.

    ``GPTOSS_ENGINE=llama-server`` allows only a binary; ``GPTOSS_ENGINE=xllamacpp`` only the wheel.
    """
    wanted = os.environ.get(_ENGINE_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "llama-server", "xllamacpp"):
        raise BinaryNotFoundError(f"{_ENGINE_ENV}={wanted} is not one of auto, llama-server, xllamacpp")
    if wanted == "xllamacpp":
        found = _prebuilt_engine()
        if found is None:
            raise BinaryNotFoundError(
                f"{_ENGINE_ENV}=xllamacpp but xllamacpp is not installed in {sys.executable}: "
                f"pip install 'xllamacpp{prebuilt.SUPPORTED_SPEC}'"
            )
        return found
    try:
        return Engine.binary(find_binary())
    except BinaryNotFoundError:
        if wanted == "llama-server" or os.environ.get("LLAMA_SERVER_BIN"):
            raise
    found = _prebuilt_engine()
    if found is None:
        raise BinaryNotFoundError(
            "no llama.cpp engine: LLAMA_SERVER_BIN is unset, no llama-server on PATH or in "
            f"{install.llama_cpp_dir() / 'bin'}, and xllamacpp is not installed in {sys.executable}. "
            f"Get the prebuilt engine with: pip install 'xllamacpp{prebuilt.SUPPORTED_SPEC}' "
            "(or build llama-server: dsrs-gptoss install --from-source)"
        )
    return found


def model_search_dirs() -> list[Path]:
    """Where models are looked for, in order (after ``LLAMA_MODEL_PATH``)."""
    home = Path.home()
    return [
        home / "models" / "gpt-oss",
        home / ".local" / "share" / "llama" / "models",
        home / ".openagents" / "models",
        install.models_dir(),
    ]


def _name_tokens(model: str) -> list[str]:
    name = model.lower().removesuffix(".gguf")
    parts = [p for p in name.replace("_", "-").replace(".", "-").split("-") if p]
    # Size tags ("20b", "120b", "135m") say the most about which file is meant.
    return [p for p in parts if p[:-1].isdigit() and p[-1] in "bm"] or parts


def find_model(model: str = "") -> Path:
    """The GGUF to serve for ``model``: ``LLAMA_MODEL_PATH``, else the best match in the discovery dirs.

    Files whose name contains the requested model (``gpt-oss-20b``) or its size tag (``20b``) come
    first; otherwise the first model found, so the default SmolLM2 from ``dsrs-gptoss install``
    serves any request on a fresh machine.
    """
    configured = os.environ.get("LLAMA_MODEL_PATH")
    searched: list[Path] = []
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            return path
        if not path.is_dir():
            raise ModelNotFoundError(
                f"LLAMA_MODEL_PATH={configured} does not exist", searched=[path], model=model or None
            )
        searched.append(path)
    searched.extend(model_search_dirs())
    found: list[Path] = []
    for folder in searched:
        if folder.is_dir():
            found.extend(sorted(p for p in folder.glob("*.gguf") if p.is_file()))
    if not found:
        listing = ", ".join(str(p) for p in searched)
        raise ModelNotFoundError(
            f"no .gguf model found; searched {listing}. Set LLAMA_MODEL_PATH=/path/to/model.gguf, "
            f"or get the default model with: {INSTALL_HINT}",
            searched=searched,
            model=model or None,
        )
    if model:
        full = model.lower().removesuffix(".gguf")
        exact = [p for p in found if full in p.name.lower()]
        if exact:
            return exact[0]
        tokens = _name_tokens(model)
        scored = sorted(found, key=lambda p: -sum(t in p.name.lower() for t in tokens))
        return scored[0]
    return found[0]


# --- health and ports -----------------------------------------------------------------------------


def is_local(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


def health(base_url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    """``GET {base}/health``: (status, body) or (None, reason) when nothing answers."""
    host, port = _host_port(base_url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return resp.status, resp.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def _healthy(status: int | None, body: str) -> bool:
    if status != 200:
        return False
    try:
        return bool(json.loads(body).get("status") == "ok")
    except (ValueError, AttributeError):
        return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


# --- the server process ---------------------------------------------------------------------------


def _idle_cores(window: float = 0.08, windows: int = 4) -> float | None:
    """Cores idle now: the most idle of a few short ``/proc/stat`` windows; None where unavailable.

    The most idle window, so a moment's burst (an import, a test starting) does not count as load
    while work that keeps the cores busy shows in every window.
    """

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields[:8])

    prev = read()
    if prev is None:
        return None
    best: float | None = None
    for _ in range(windows):
        time.sleep(window)
        cur = read()
        if cur is None:
            return None
        if cur[1] > prev[1]:
            share = (cur[0] - prev[0]) / (cur[1] - prev[1])
            best = share if best is None else max(best, share)
        prev = cur
    return None if best is None else best * (os.cpu_count() or 1)


def default_threads() -> int:
    """Compute threads for an auto-started server: every core on an idle machine, else the idle ones.

    ggml's threads spin at barriers; when they outnumber the free cores, generation collapses
    (SmolLM2 on 2 cores under load: 2 threads 4 tok/s, 1 thread 45-60 tok/s), while on an idle
    machine one thread per core is twice as fast as one fewer (123 vs 53 tok/s). So the idle cores
    are measured when the server starts (~0.3 s of ``/proc/stat``, else the load average): all idle
    -> all cores; otherwise the idle ones, at most cores - 1, at least one. ``LLAMA_THREADS``
    overrides. The choice holds for the server's life.
    """
    configured = os.environ.get("LLAMA_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    cores = os.cpu_count() or 2
    idle = _idle_cores()
    if idle is None:
        idle = max(0.0, cores - os.getloadavg()[0]) if hasattr(os, "getloadavg") else cores - 1.0
    if idle >= cores - 0.35:
        return cores
    return max(1, min(cores - 1, int(idle + 0.5)))


#: Slots of an auto-started server (concurrent requests batched together), unless ``LLAMA_PARALLEL``.
DEFAULT_PARALLEL = 8
#: Context tokens all slots of an auto-started server hold together (the KV cache's size).
CONTEXT_BUDGET = 32768


def default_parallel(ctx_size: int) -> int:
    """Slots for an auto-started server: :data:`DEFAULT_PARALLEL`, fewer when ``ctx_size`` is large.

    Every slot holds its own ``ctx_size`` tokens (a KV pool shared with ``--kv-unified`` measured
    0.75x the throughput: every token attends over the whole pool), so the slots fit in
    :data:`CONTEXT_BUDGET`. ``LLAMA_PARALLEL`` overrides.
    """
    configured = os.environ.get("LLAMA_PARALLEL")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(DEFAULT_PARALLEL, CONTEXT_BUDGET // max(1, ctx_size)))


_FLAG_CACHE: dict[tuple[str, ...], str] = {}


def engine_supports(engine: Engine, flag: str) -> bool:
    """Whether ``engine`` takes ``flag`` (the prebuilt engine: known; a binary: its ``--help``)."""
    if engine.kind == "xllamacpp":
        return flag in ("--kv-unified", "--poll", "--parallel", "--cont-batching", "--threads-batch")
    if engine.argv not in _FLAG_CACHE:
        try:
            out = subprocess.run(
                [*engine.argv, "--help"], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
            )
            _FLAG_CACHE[engine.argv] = out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            _FLAG_CACHE[engine.argv] = ""
    return flag in _FLAG_CACHE[engine.argv]


class LlamaServer:
    """One ``llama-server`` process we start and own. Use as a context manager, or ``start()``/``stop()``.

    Output (stdout and stderr) goes to ``log_path`` (a file, so the pipes never fill up).
    ``port=None`` picks a free port.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        binary: str | Path | None = None,
        engine: Engine | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        ctx_size: int = 4096,
        threads: int | None = None,
        threads_batch: int | None = None,
        parallel: int = 1,
        kv_pool: int | None = None,
        alias: str | None = None,
        jinja: bool = True,
        extra_args: Sequence[str] = (),
        log_path: str | Path | None = None,
        startup_timeout: float = 120.0,
        verify: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        if engine is None:
            engine = Engine.binary(binary) if binary is not None else find_engine()
        self.engine = engine
        self.binary = Path(engine.argv[0])
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.ctx_size = ctx_size
        self.threads = threads if threads is not None else default_threads()
        self.threads_batch = threads_batch
        self.parallel = max(1, parallel)
        self.kv_pool = kv_pool
        self.alias = alias
        self.jinja = jinja
        self.extra_args = tuple(extra_args)
        logs = install.cache_home() / "logs"
        self.log_path = Path(log_path) if log_path is not None else logs / f"llama-server-{self.port}.log"
        self.startup_timeout = startup_timeout
        self.verify = verify
        self.process: subprocess.Popen[bytes] | None = None
        self.started_seconds: float | None = None
        self.capabilities: Capabilities | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        cmd = [
            *self.engine.argv,
            "--model",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--ctx-size",
            # One pool all slots share (kv_pool), or llama.cpp splits the total: ctx_size per slot.
            str(self.kv_pool if self.kv_pool else self.ctx_size * self.parallel),
        ]
        if self.kv_pool:
            cmd.append("--kv-unified")
        if self.jinja:
            # The model's own chat template (Harmony for gpt-oss); reasoning split into reasoning_content.
            cmd += ["--jinja", "--reasoning-format", "auto"]
        if self.alias:
            cmd += ["--alias", self.alias]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.threads_batch:
            cmd += ["--threads-batch", str(self.threads_batch)]
        if self.parallel > 1:
            cmd += ["--parallel", str(self.parallel), "--cont-batching"]
        if self.engine.kind == "xllamacpp":
            cmd += ["--parent-pid", str(os.getpid())]
        cmd += list(self.extra_args)
        return cmd

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> LlamaServer:
        """Start and wait for ``/health`` to answer ok; raise :class:`ServerStartError` on crash or timeout."""
        if self.is_running():
            return self
        if not self.model_path.is_file():
            raise ModelNotFoundError(f"model file {self.model_path} does not exist", searched=[self.model_path])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, not the server's
            )
        _track(self)
        deadline = t0 + self.startup_timeout
        delay = 0.02
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                _untrack(self)
                raise ServerStartError(
                    f"{self.engine.name} exited with code {code} while starting (port {self.port}, "
                    f"model {self.model_path}); log {self.log_path}:\n{self.log_tail()}",
                    log_tail=self.log_tail(),
                )
            status, body = health(self.base_url, timeout=1.0)
            if _healthy(status, body):
                break
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ServerStartError(
                    f"llama-server did not answer /health within {self.startup_timeout:g}s "
                    f"(last: {status} {body[:200]}); log {self.log_path}, last lines:\n{tail}",
                    log_tail=tail,
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        if self.verify:
            try:
                self.capabilities = check_capabilities(self.base_url, jinja=self.jinja)
            except EngineCheckFailed as exc:
                self.stop()
                raise EngineCheckFailed(
                    f"{self.engine.name} (model {self.model_path.name}): {exc.message}", log_tail=self.log_tail()
                ) from None
        self.started_seconds = time.monotonic() - t0
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout``)."""
        proc = self.process
        self.process = None
        _untrack(self)
        _checked.pop(self.base_url, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"LlamaServer({self.base_url}, {self.engine.kind}, model={self.model_path.name}, {state})"


def _post(base_url: str, path: str, body: dict[str, object], timeout: float) -> tuple[int, str]:
    host, port = _host_port(base_url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read(1 << 16).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise EngineCheckFailed(f"POST {path} failed: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


@dataclass(frozen=True)
class Capabilities:
    """What a started server was seen to do. ``json_schema=False``: the provider sends our GBNF instead."""

    grammar: bool = True
    json_schema: bool = True
    jinja: bool = True


# Servers this process started and checked, by base URL (the provider reads them via capabilities_of).
_checked: dict[str, Capabilities] = {}


def capabilities_of(base_url: str) -> Capabilities | None:
    """The result of :func:`check_capabilities` for a server this process started, else None."""
    return _checked.get(base_url.rstrip("/"))


def check_capabilities(base_url: str, *, jinja: bool = True, timeout: float = 60.0) -> Capabilities:
    """Check that the server does what the provider relies on; :class:`EngineCheckFailed` says what not.

    GBNF grammars must be parsed (a broken one is a 400) and applied, and with ``jinja`` the model's
    chat template must render. ``response_format`` json_schema may be unusable: llama.cpp builds
    with LLGuidance (the xllamacpp wheel) stop constraining when LLGuidance cannot map the model's
    vocabulary (seen with a byte-poor test vocabulary); the result then says ``json_schema=False``
    and the provider converts schemas to GBNF itself. A few tokens each: milliseconds on small models.
    """
    if jinja:
        status, text = _post(base_url, "/apply-template", {"messages": [{"role": "user", "content": "hi"}]}, timeout)
        if status != 200 or '"prompt"' not in text:
            raise EngineCheckFailed(f"the chat template does not render (--jinja): {status} {text[:200]}")
    probe: dict[str, object] = {"prompt": "x", "n_predict": 4, "temperature": 0.0}
    status, text = _post(base_url, "/completion", {**probe, "grammar": 'root ::= "{"'}, timeout)
    if status != 200 or not _content(text).startswith("{"):
        raise EngineCheckFailed(f"GBNF grammars are not applied: {status} {text[:200]}")
    status, text = _post(base_url, "/completion", {**probe, "grammar": "root ::= ("}, timeout)
    if status != 400:
        raise EngineCheckFailed(f"a broken GBNF grammar was not rejected (HTTP {status}): grammars are ignored")
    status, text = _post(base_url, "/completion", {**probe, "json_schema": {"type": "array"}}, timeout)
    found = Capabilities(json_schema=status == 200 and _content(text).startswith("["), jinja=jinja)
    _checked[base_url.rstrip("/")] = found
    return found


def _content(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    content = data.get("content") if isinstance(data, dict) else None
    return content.lstrip() if isinstance(content, str) else ""


# Servers this process started: stopped at exit.
_started: set[LlamaServer] = set()
_started_lock = threading.Lock()
_atexit_registered = False


def _track(server: LlamaServer) -> None:
    global _atexit_registered
    with _started_lock:
        _started.add(server)
        if not _atexit_registered:
            atexit.register(stop_started_servers)
            _atexit_registered = True


def _untrack(server: LlamaServer) -> None:
    with _started_lock:
        _started.discard(server)


def stop_auto_started_servers() -> None:
    """Stop the servers :func:`ensure_server` auto-started (not ``LlamaServer`` objects used directly)."""
    with _auto_lock:
        servers = list(_auto.values())
        _auto.clear()
    for server in servers:
        server.stop()


def stop_started_servers() -> None:
    """Stop every llama-server this process started (runs at exit) and forget auto-started ones."""
    with _started_lock:
        servers = list(_started)
    with _auto_lock:
        _auto.clear()
    for server in servers:
        server.stop()


# --- ensure_server: reuse or auto-start -----------------------------------------------------------


@dataclass(frozen=True)
class ServerHandle:
    """Where a usable llama-server is. ``server`` is set when this process started it."""

    base_url: str
    server: LlamaServer | None = None

    @property
    def started(self) -> bool:
        return self.server is not None

    @property
    def model_path(self) -> Path | None:
        return self.server.model_path if self.server is not None else None


# Auto-started servers by the base URL that was asked for, so later calls in this process reuse them.
_auto: dict[str, LlamaServer] = {}
_auto_lock = threading.Lock()


def ensure_server(
    base_url: str | None = None,
    *,
    model: str = "",
    model_path: str | Path | None = None,
    ctx_size: int = 4096,
    threads: int | None = None,
    parallel: int | None = None,
    startup_timeout: float = 120.0,
    auto_start: bool = True,
) -> ServerHandle:
    """A llama-server answering at ``base_url`` (default ``GPTOSS_BASE_URL`` or localhost:8000).

    Reuses one that answers ``/health`` (waiting while it loads its model), or that answers it with
    401/403/5xx (a server behind auth or failing: its errors reach the caller); otherwise, for a local
    URL with ``auto_start``, starts one on that port, or on a free port when something else holds it,
    with :func:`default_parallel` slots (continuous batching) of ``ctx_size`` tokens each and
    :func:`default_threads` threads unless given.
    """
    base = (base_url or os.environ.get("GPTOSS_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    with _auto_lock:
        mine = _auto.get(base)
        if mine is not None and mine.is_running():
            return ServerHandle(mine.base_url, mine)
        status, body = health(base, timeout=2.0)
        if _healthy(status, body):
            return ServerHandle(base)
        if status == 503 and "loading" in body.lower():
            return _wait_loading(base, startup_timeout)
        if status is not None and (status in (401, 403) or status >= 500):
            # A server is there (behind auth, or failing): talk to it and let its answer be the typed
            # error, rather than silently serving the call from another server of our own.
            return ServerHandle(base)
        if not auto_start:
            raise LlamaServerError(
                f"no llama-server answers at {base} ({body[:120]}) and auto-start is off", model=model or None
            )
        if not is_local(base):
            raise LlamaServerError(
                f"no llama-server answers at {base} ({body[:120]}); it is not a local URL, so it is not auto-started",
                model=model or None,
            )
        engine = find_engine()
        slots = parallel if parallel is not None else default_parallel(ctx_size)
        path = Path(model_path) if model_path is not None else find_model(model)
        host, port = _host_port(base)
        bind = "127.0.0.1" if host in ("localhost", "0.0.0.0") else host
        if status is not None or _port_open(bind, port):
            port = free_port(bind)  # something else answers on the default port
        server = LlamaServer(
            path,
            engine=engine,
            host=bind,
            port=port,
            ctx_size=ctx_size,
            threads=threads,
            parallel=slots,
            alias=model or None,
            startup_timeout=startup_timeout,
        )
        try:
            server.start()
        except ServerStartError:
            if not _port_open(bind, port):
                raise
            # Lost a race for the port: one retry on a fresh free port.
            server = LlamaServer(
                path,
                engine=engine,
                host=bind,
                ctx_size=ctx_size,
                threads=threads,
                parallel=slots,
                alias=model or None,
                startup_timeout=startup_timeout,
            )
            server.start()
        _auto[base] = server
        return ServerHandle(server.base_url, server)


def _wait_loading(base: str, timeout: float) -> ServerHandle:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = health(base, timeout=2.0)
        if _healthy(status, body):
            return ServerHandle(base)
        time.sleep(0.2)
    raise ServerStartError(f"the llama-server at {base} was still loading its model after {timeout:g}s")
