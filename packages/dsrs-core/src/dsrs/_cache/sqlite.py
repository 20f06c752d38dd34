"""The on-disk cache layer: one SQLite file in the user cache directory.

* Location: ``$DSRS_CACHE_DIR/responses.sqlite3``, else the platform cache directory
  (``$XDG_CACHE_HOME/dsrs`` or ``~/.cache/dsrs`` on Linux, ``~/Library/Caches/dsrs`` on macOS,
  ``%LOCALAPPDATA%\\dsrs\\Cache`` on Windows). The directory is created ``0700``, the file ``0600``
  (SQLite gives its ``-wal``/``-shm`` files the same mode).
* WAL journal, so readers never wait for writers; one connection per thread and per process, and a
  busy timeout, so concurrent threads and processes can share the file.
* A corrupt file warns once (:class:`~dsrs._cache.CacheWarning`) and the layer turns itself off for
  this process (every lookup is a miss); ``dsrs cache clear`` deletes and recreates it. A locked or
  read-only file warns and misses without turning the layer off.
* Values are the JSON of :meth:`dsrs.LMResponse.to_dict`; nothing else about the request is stored
  (the key is a SHA-256 digest, so prompts and secrets never appear in the file in clear).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from dsrs import _json, _runtime
from dsrs._cache import CacheBackend, CacheWarning
from dsrs.types import LMResponse

__all__ = ["DEFAULT_FILENAME", "SQLiteCache", "default_cache_dir"]

DEFAULT_FILENAME = "responses.sqlite3"
_SCHEMA_VERSION = 1
_WARN_INTERVAL_S = 60.0


def default_cache_dir() -> Path:
    """``DSRS_CACHE_DIR``, else the platform's per-user cache directory + ``dsrs``."""
    env = os.environ.get("DSRS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "dsrs" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "dsrs"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dsrs"


class SQLiteCache(CacheBackend):
    """Responses in a SQLite file (thread- and process-safe). See the module docstring."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_entries: int = 200_000,
        busy_timeout_s: float = 2.0,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self.max_entries = max_entries
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._init_lock = threading.Lock()
        _runtime.on_fork(self)
        self._initialized_pid: int | None = None
        self._broken: str | None = None
        self._last_warning = 0.0
        self._writes = 0
        self.hits = 0
        self.misses = 0

    @property
    def path(self) -> Path:
        """The database file (resolved from ``DSRS_CACHE_DIR`` on first use when not given)."""
        if self._path is None:
            self._path = default_cache_dir() / DEFAULT_FILENAME
        return self._path

    @property
    def broken(self) -> str | None:
        """Why this layer turned itself off (a corrupt file), or ``None``."""
        return self._broken

    # --- connections ------------------------------------------------------------------------

    def _create_file(self) -> None:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        if sys.platform != "win32" and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)

    def after_fork(self) -> None:
        """In a forked child: never touch the parent's connection (reopened per process)."""
        self._init_lock = threading.Lock()
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        pid = os.getpid()
        if conn is not None and getattr(self._local, "pid", None) == pid:
            return conn
        if self._initialized_pid != pid:
            with self._init_lock:
                if self._initialized_pid != pid:
                    self._create_file()
                    init = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
                    try:
                        init.execute("PRAGMA journal_mode=WAL")
                        if init.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                            init.execute(
                                "CREATE TABLE IF NOT EXISTS responses ("
                                " key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL)"
                            )
                            init.execute("CREATE INDEX IF NOT EXISTS responses_created ON responses(created)")
                            init.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                    finally:
                        init.close()
                    self._initialized_pid = pid
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        self._local.conn = conn
        self._local.pid = pid
        return conn

    def _failed(self, exc: Exception, action: str) -> None:
        if isinstance(exc, (sqlite3.OperationalError, OSError)):
            # Locked, busy, read-only, disk full: transient, the layer stays on.
            now = time.monotonic()
            if now - self._last_warning >= _WARN_INTERVAL_S:
                self._last_warning = now
                warnings.warn(
                    f"dsrs cache: could not {action} {self.path} ({type(exc).__name__}: {exc}); treating as a miss",
                    CacheWarning,
                    stacklevel=4,
                )
            return
        self._broken = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"dsrs cache: {self.path} is unusable ({self._broken}); the disk cache is off for this process. "
            "Run `dsrs cache clear` to recreate it.",
            CacheWarning,
            stacklevel=4,
        )

    # --- sync API (the CLI and the async methods use these) ----------------------------------

    def get(self, key: str) -> LMResponse | None:
        if self._broken is not None:
            return None
        try:
            row = self._connect().execute("SELECT value FROM responses WHERE key=?", (key,)).fetchone()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "read")
            return None
        if row is None:
            self.misses += 1
            return None
        try:
            response = LMResponse.from_dict(_json.loads(row[0]))
        except (TypeError, ValueError, AttributeError, KeyError) as exc:  # JSON errors are ValueErrors
            warnings.warn(
                f"dsrs cache: dropping an unreadable entry ({type(exc).__name__})", CacheWarning, stacklevel=3
            )
            self.delete(key)
            self.misses += 1
            return None
        self.hits += 1
        return response

    def set(self, key: str, response: LMResponse) -> None:
        if self._broken is not None:
            return
        blob = _json.dumps(response.to_dict())
        try:
            conn = self._connect()
            conn.execute(
                "INSERT OR REPLACE INTO responses(key, value, created) VALUES (?, ?, ?)", (key, blob, time.time())
            )
            self._writes += 1
            if self._writes % 512 == 0:
                self._prune(conn)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "write")

    def _prune(self, conn: sqlite3.Connection) -> None:
        (count,) = conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        excess = count - self.max_entries
        if excess > 0:
            conn.execute(
                "DELETE FROM responses WHERE key IN (SELECT key FROM responses ORDER BY created LIMIT ?)", (excess,)
            )

    def delete(self, key: str) -> None:
        try:
            self._connect().execute("DELETE FROM responses WHERE key=?", (key,))
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "write")

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def clear(self) -> int:
        """Delete every entry and return how many there were; a corrupt file is deleted and recreated."""
        if self._broken is None:
            try:
                conn = self._connect()
                (count,) = conn.execute("SELECT COUNT(*) FROM responses").fetchone()
                conn.execute("DELETE FROM responses")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
                return int(count)
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:
                self._broken = f"{type(exc).__name__}: {exc}"
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass
        self._broken = None
        self._initialized_pid = None
        return 0

    def stats(self) -> dict[str, Any]:
        path = self.path
        stats: dict[str, Any] = {"backend": "sqlite", "path": str(path)}
        if self._broken is not None:
            stats["broken"] = self._broken
        else:
            try:
                stats["entries"] = int(self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            except (sqlite3.Error, OSError) as exc:
                stats["error"] = f"{type(exc).__name__}: {exc}"
        stats["bytes"] = sum(
            os.stat(f"{path}{suffix}").st_size for suffix in ("", "-wal") if os.path.exists(f"{path}{suffix}")
        )
        stats["hits"], stats["misses"] = self.hits, self.misses
        return stats

    # --- CacheBackend ------------------------------------------------------------------------

    async def aget(self, key: str) -> LMResponse | None:
        # A WAL read is a few tens of microseconds and never waits for writers: done inline.
        return self.get(key)

    async def aset(self, key: str, response: LMResponse) -> None:
        # A write may wait for another process's lock (busy timeout): keep it off the event loop.
        await asyncio.to_thread(self.set, key, response)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    async def astats(self) -> dict[str, Any]:
        return self.stats()

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r})"
