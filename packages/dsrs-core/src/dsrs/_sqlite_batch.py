"""A SQLite table written in batches by a daemon thread: the ledger's and the prompt log's writer.

The caller's thread only appends a tuple to a list. A daemon thread writes the batch in one
transaction every ``flush_interval`` seconds (sooner when ``flush_at`` rows are pending), and at
exit. A locked or unwritable file keeps the rows for the next flush (up to ``max_pending``; beyond
that the oldest are dropped and the count is logged); a corrupt file turns the writer off for this
process with one logged warning. Problems are *logged* (logger ``dsrs.ledger``), not warned, since
they happen on the writer thread. Files are created ``0600`` in a ``0700`` directory, WAL journal.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

__all__ = ["BatchedSQLite"]

log = logging.getLogger("dsrs.ledger")

_LOG_INTERVAL_S = 60.0


# Every writer of the process, so a forked child resets them all (without keeping them alive).
_writers: weakref.WeakSet[BatchedSQLite] = weakref.WeakSet()


def _after_fork() -> None:
    for writer in list(_writers):
        writer._reset_process_state()


def _flush_all() -> None:
    for writer in list(_writers):
        if writer.broken is None:
            writer.flush(final=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
# Rows recorded just before exit (the last call of a CLI run) are written on the way out.
atexit.register(_flush_all)


#: Consecutive failed flushes (other than a busy file) after which a writer stops trying.
_GIVE_UP_AFTER = 5


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _bind_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    return (OverflowError, TypeError, ValueError, sqlite3.InterfaceError, sqlite3.ProgrammingError)


class BatchedSQLite:
    """Rows appended in memory, written to one SQLite table in batches by a daemon thread.

    Subclasses set :attr:`table`, :attr:`columns`, :attr:`schema` and :meth:`clean` (which
    normalizes a raw row on the writer thread). See the module docstring for the behaviour.
    """

    table: str = ""
    columns: tuple[str, ...] = ()
    schema: tuple[str, ...] = ()
    schema_version = 1
    what = "ledger"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        flush_interval: float = 0.5,
        flush_at: int = 2048,
        max_pending: int = 50_000,
        busy_timeout_s: float = 2.0,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self.flush_interval = flush_interval
        self.flush_at = flush_at
        self.max_pending = max_pending
        self.busy_timeout_s = busy_timeout_s
        self.broken: str | None = None
        self._failures = 0
        self.written = 0
        self.dropped = 0
        # Identifiers come from the subclass (constants); values are bound.
        self._insert_head = f"INSERT INTO {self.table}({', '.join(self.columns)}) VALUES "  # noqa: S608
        self._row_marks = f"({', '.join('?' * len(self.columns))})"
        self._insert = self._insert_head + self._row_marks  # one row
        self._chunk_rows = max(1, 999 // max(1, len(self.columns)))
        self._insert_chunk_sql = self._insert_sql(self._chunk_rows)  # every full chunk's statement
        self._reset_process_state()
        _writers.add(self)

    def _reset_process_state(self) -> None:
        # After a fork the parent's pending rows are the parent's to write, and its thread is gone.
        self._pending: list[Any] = []  # items as appended, turned into rows by the writer
        self._retry: list[tuple[Any, ...]] = []  # rows a failed flush keeps for the next one
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._conn: sqlite3.Connection | None = None
        self._last_log: dict[str, float] = {}

    def default_path(self) -> Path:
        raise NotImplementedError

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self.default_path()
        return self._path

    def clean(self, item: Any) -> tuple[Any, ...]:
        """Turn an appended item into the row to insert (on the writer thread): the fast path."""
        return tuple(item)

    def clean_strict(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Normalize a row SQLite refused to bind, value by value (the slow path, rarely taken)."""
        return row

    # --- the hot path -------------------------------------------------------------------------

    def append(self, item: Any) -> None:
        """Queue one item (never touches the disk, and does no work, on the caller's thread)."""
        if self.broken is not None:
            return
        with self._lock:
            self._pending.append(item)
            n = len(self._pending)
            if n > self.max_pending:  # the writer is stuck: keep memory bounded
                del self._pending[0]
                self.dropped += 1
                self._log("drop", f"{self.dropped} rows dropped so far: the writer of {self.path} fell behind")
        if self._thread is None:
            self._start()
        elif n >= self.flush_at:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=f"dsrs-{self.what}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while self.broken is None and not self._stopping:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()

    # --- writing ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        if self._conn is not None:
            return self._conn
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        if sys.platform != "win32" and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        conn = sqlite3.connect(path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] < self.schema_version:
                for statement in self.schema:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={self.schema_version}")
            self.prune(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def prune(self, conn: sqlite3.Connection) -> None:
        """Delete old rows (called when the file is opened)."""

    def _rows(self, items: list[Any]) -> list[tuple[Any, ...]]:
        rows = []
        for item in items:
            try:
                rows.append(self.clean(item))
            except Exception as exc:  # a bug or a hostile value: lose this row, not the batch
                self.dropped += 1
                self._log("clean", f"a row could not be stored ({type(exc).__name__}); {self.dropped} dropped so far")
        return rows

    def flush(self, *, final: bool = False) -> int:
        """Write every pending row now; return how many were written (``final``: at exit, no retry)."""
        import sqlite3

        bind_errors = _bind_errors()
        with self._lock:
            items, self._pending = self._pending, []
            retry, self._retry = self._retry, []
        if (not items and not retry) or self.broken is not None:
            return 0
        with self._io_lock:
            rows = retry + self._rows(items)
            try:
                try:
                    self._insert_rows(rows)
                except bind_errors:
                    # A value SQLite cannot bind (a plugin's odd type, an integer past 2**63): store
                    # the batch again with every row normalized, so one bad row costs nothing else.
                    rows = [self.clean_strict(r) for r in rows]
                    self._insert_rows(rows)
            except (sqlite3.OperationalError, OSError) as exc:
                # Locked or busy: another process is writing, keep the rows for the next flush.
                # Anything else (read-only, no such directory, disk full) rarely heals by itself:
                # after a few tries in a row the writer stops, with one line saying why.
                self._failures = 0 if _is_busy(exc) else self._failures + 1
                if final or self._failures >= _GIVE_UP_AFTER:
                    self.broken = f"{type(exc).__name__}: {exc}"
                    self.dropped += len(rows)
                    log.warning(
                        "dsrs %s: cannot write %s (%s); %d rows not written"
                        + ("" if final else ", and writing it is off for this process"),
                        self.what,
                        self.path,
                        self.broken,
                        len(rows),
                    )
                    return 0
                self._keep(rows)
                self._log("retry", f"could not write {self.path} ({type(exc).__name__}: {exc}); will retry")
                return 0
            except bind_errors as exc:
                # Even the normalized batch would not bind (a bug): this batch is lost, the file is fine.
                self.dropped += len(rows)
                self._log("clean", f"{len(rows)} rows could not be stored ({type(exc).__name__}); dropped")
                return 0
            except sqlite3.DatabaseError as exc:
                self.broken = f"{type(exc).__name__}: {exc}"
                self.dropped += len(rows)
                log.warning(
                    "dsrs %s: %s is unusable (%s); writing it is off for this process "
                    "(%d rows not written). Move the file away to start a new one.",
                    self.what,
                    self.path,
                    self.broken,
                    len(rows),
                )
                return 0
        self._failures = 0
        self.written += len(rows)
        return len(rows)

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            step = self._chunk_rows
            for start in range(0, len(rows), step):
                self._insert_chunk(conn, rows[start : start + step])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _insert_chunk(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` with one multi-row ``INSERT ... VALUES (...), (...)`` statement.

        Against ``executemany`` (one statement step per row, the GIL taken back for each) this
        costs well under half the CPU per row (3.4 against 8.8 µs here), and SQLite runs the
        whole chunk without the GIL. A chunk binds at most 999 values, the limit of old SQLite
        builds; full chunks reuse one prepared statement.
        """
        n = len(rows)
        sql = self._insert_chunk_sql if n == self._chunk_rows else self._insert_sql(n)
        conn.execute(sql, list(itertools.chain.from_iterable(rows)))

    def _insert_sql(self, n: int) -> str:
        return self._insert if n == 1 else f"{self._insert_head}{', '.join([self._row_marks] * n)}"

    def _keep(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            merged = rows + self._retry
            excess = len(merged) - self.max_pending
            if excess > 0:
                del merged[:excess]
                self.dropped += excess
                self._log("drop", f"{self.dropped} rows dropped so far: {self.path} stayed unwritable")
            self._retry = merged

    def _log(self, kind: str, message: str) -> None:
        # At most one line a minute per kind, so a file locked for an hour does not flood the log.
        now = time.monotonic()
        if now - self._last_log.get(kind, -_LOG_INTERVAL_S) >= _LOG_INTERVAL_S:
            self._last_log[kind] = now
            log.warning("dsrs %s: %s", self.what, message)

    def close(self) -> None:
        """Stop the writer thread, write what is pending, close the file (a later append reopens)."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            if thread is not threading.current_thread():
                thread.join(timeout=self.busy_timeout_s + 5)
            self._thread = None
        self.flush()
        with self._io_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
