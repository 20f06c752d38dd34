"""A throwaway ``redis-server`` on 127.0.0.1 for tests and benchmarks.

:class:`RedisServer` starts one on a free port, through the repository's
``scripts/redis-server.sh`` when it is found (it installs Debian's ``redis-server`` if missing),
else with a ``redis-server`` on ``PATH``; it keeps nothing on disk and can be stopped and started
again on the same port (to test a lost and recovered Redis).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer", "RedisServerUnavailable", "find_script", "free_port"]


class RedisServerUnavailable(RuntimeError):
    """No redis-server could be installed or started here (the reason says why)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_script(start: Path | None = None) -> Path | None:
    """``scripts/redis-server.sh`` of the dsrs repository above ``start`` (or ``$DSRS_REDIS_SCRIPT``)."""
    env = os.environ.get("DSRS_REDIS_SCRIPT")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / "scripts" / "redis-server.sh"
        if candidate.is_file():
            return candidate
    return None


class RedisServer:
    """One redis-server on ``127.0.0.1:port``; ``url`` is ``redis://127.0.0.1:port/0``."""

    def __init__(self, port: int | None = None, *, script: Path | None = None) -> None:
        self.port = port or free_port()
        self.script = script if script is not None else find_script(Path(__file__).parent)
        self._run_dir: Path | None = None

    @property
    def run_dir(self) -> Path:
        """Where the server's pid and log files live (created on start, removed on stop)."""
        if self._run_dir is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix="dsrs-redis-"))
        return self._run_dir

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "DSRS_REDIS_RUN_DIR": str(self.run_dir)}

    def start(self) -> RedisServer:
        if self.script is not None:
            proc = subprocess.run(
                ["bash", str(self.script), "start", str(self.port)],
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if proc.returncode == 3:
                raise RedisServerUnavailable(f"redis-server cannot be installed here: {proc.stderr.strip()}")
            if proc.returncode != 0:
                raise RuntimeError(f"{self.script} start {self.port} failed ({proc.returncode}): {proc.stderr.strip()}")
            return self
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerUnavailable("no scripts/redis-server.sh found and no redis-server on PATH")
        subprocess.run(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "yes", "--dir", str(self.run_dir), "--pidfile", str(self.run_dir / "redis.pid")],
            check=True,
            timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        try:
            self._stop()
        finally:
            if self._run_dir is not None:
                shutil.rmtree(self._run_dir, ignore_errors=True)
                self._run_dir = None

    def _stop(self) -> None:
        if self.script is not None:
            subprocess.run(
                ["bash", str(self.script), "stop", str(self.port)],
                env=self._env(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            return
        pidfile = self.run_dir / "redis.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().strip() or 0)
            if pid:
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
                for _ in range(100):
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.05)
            pidfile.unlink(missing_ok=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
