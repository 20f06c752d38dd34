"""The local usage ledger: one row per finished call in ``usage.sqlite3`` beside the cache.

* On by default (``DSRS_LEDGER=0`` turns it off); it is dsrs-core's own ``dsrs_usage_recorded``
  sink, so ``dsrs usage`` works without Redis. A row holds when, provider, model, lane, request id,
  attempt, duration, token counts, cost, cache hit and the error class of a failure: never prompt
  or response text, never a key.
* The caller reads the :class:`~dsrs.UsageRecord` into a tuple of plain values and appends it to a
  list; a daemon thread writes the batches (:class:`dsrs._sqlite_batch.BatchedSQLite`: locked files
  retried, corrupt files logged once, memory bounded). Counts are clamped when summed; a row SQLite
  cannot bind (a plugin's odd types, huge integers) is normalized value by value before it is stored.
* Location: ``$DSRS_CACHE_DIR/usage.sqlite3`` (see :func:`dsrs._cache.sqlite.default_cache_dir`),
  directory ``0700``, file ``0600``, WAL journal. Rows older than ``DSRS_LEDGER_DAYS`` (default
  400) are pruned now and then.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsrs._sqlite_batch import BatchedSQLite
from dsrs._usage import LmUsage, UsageRecord

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "DEFAULT_FILENAME",
    "GROUPS",
    "METRICS",
    "LocalLedger",
    "get_ledger",
    "ledger_enabled",
    "usage_summary",
]

DEFAULT_FILENAME = "usage.sqlite3"
_SCHEMA_VERSION = 1
_COLUMNS = (
    "ts",
    "provider",
    "model",
    "lane",
    "request_id",
    "attempt",
    "duration_s",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_msats",
    "cost_usd",
    "cache_hit",
    "calls",
    "error",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS calls ("
    " ts REAL NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, lane TEXT, request_id TEXT,"
    " attempt INTEGER, duration_s REAL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    " total_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,"
    " cost_msats INTEGER, cost_usd REAL, cache_hit INTEGER NOT NULL, calls INTEGER NOT NULL, error TEXT)"
)
#: What ``dsrs usage --by`` may group on.
GROUPS = {
    "day": "date(ts, 'unixepoch')",
    "provider": "provider",
    "lane": "coalesce(lane, '-')",
    "model": "model",
    "error": "coalesce(error, '-')",
}
#: The summed columns of a summary row. Tokens of cache hits are not counted (nothing was spent);
#: counts are clamped at 0 here, since rows are stored as the records said (see LocalLedger.clean).
METRICS = {
    "calls": "sum(CASE WHEN error IS NULL THEN max(coalesce(calls, 1), 1) ELSE 0 END)",
    "errors": "sum(error IS NOT NULL)",
    "cache_hits": "sum(cache_hit = 1)",
    **{
        name: f"sum(CASE WHEN cache_hit = 1 THEN 0 ELSE max(coalesce({name}, 0), 0) END)"
        for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
    },
    "cost_msats": "sum(coalesce(cost_msats, 0))",
    "cost_usd": "sum(CASE WHEN abs(cost_usd) < 1e15 THEN cost_usd ELSE 0.0 END)",  # no inf, no NULL
    "unpriced_calls": "sum(cost_msats IS NULL AND error IS NULL AND cache_hit = 0)",
}


def ledger_enabled() -> bool:
    """``DSRS_LEDGER`` unset or truthy (``0``/``false``/``off``/``no`` turn the ledger off)."""
    return os.environ.get("DSRS_LEDGER", "1").strip().lower() not in ("0", "false", "off", "no")


def default_path() -> Path:
    from dsrs._cache.sqlite import default_cache_dir

    return default_cache_dir() / DEFAULT_FILENAME


def _error_name(error: object) -> str | None:
    if error is None:
        return None
    if isinstance(error, str):
        return error[:200]
    if isinstance(error, type):
        return error.__name__
    return type(error).__name__


#: Larger counts are not real (SQLite integers stop at 2**63 - 1): capped, so a batch still binds.
_MAX_COUNT = 2**53


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: object) -> int:
    # Usage numbers come from servers; a wrong type must not poison a SUM or the whole batch.
    return min(max(int(value), 0), _MAX_COUNT) if _finite(value) else 0  # type: ignore[call-overload]


def _opt_num(value: object, kind: type) -> Any:
    if not _finite(value):
        return None
    return kind(min(max(value, -_MAX_COUNT), _MAX_COUNT))  # type: ignore[call-overload]


def _opt_text(value: object) -> str | None:
    return None if value is None else str(value)[:500]


def _clean(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Normalize one raw row (done on the writer thread, off the hot path)."""
    (
        ts,
        provider,
        model,
        lane,
        request_id,
        attempt,
        duration,
        pt,
        ct,
        tt,
        cached,
        reasoning,
        msats,
        usd,
        hit,
        calls,
        err,
    ) = row
    return (
        float(ts) if isinstance(ts, (int, float)) and ts > 0 else time.time(),
        str(provider)[:200],
        str(model)[:500],
        _opt_text(lane),
        _opt_text(request_id),
        _opt_num(attempt, int),
        _opt_num(duration, float),
        _int(pt),
        _int(ct),
        _int(tt),
        _int(cached),
        _int(reasoning),
        _opt_num(msats, int),
        _opt_num(usd, float),
        1 if hit else 0,
        max(_int(calls), 1),
        _error_name(err),
    )


class LocalLedger(BatchedSQLite):
    """The usage ledger file. See the module docstring."""

    table = "calls"
    columns = _COLUMNS
    schema = (_SCHEMA, "CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts)")
    schema_version = _SCHEMA_VERSION

    def default_path(self) -> Path:
        return default_path()

    def clean(self, item: Any) -> tuple[Any, ...]:
        # Stored as read; the summaries clamp counts in SQL, and a row SQLite cannot bind sends
        # its batch through clean_strict (see BatchedSQLite.flush).
        return item if type(item) is tuple else _clean(tuple(item))

    def clean_strict(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return _clean(row)

    def prune(self, conn: sqlite3.Connection) -> None:
        try:
            days = float(os.environ.get("DSRS_LEDGER_DAYS", "400"))
        except ValueError:
            days = 400.0
        conn.execute("DELETE FROM calls WHERE ts < ?", (time.time() - days * 86400,))

    def record(self, record: UsageRecord) -> None:
        """Queue one finished call as a tuple of plain values (about a microsecond).

        Reading the row here rather than on the writer lets the record, its request and its
        response be freed at once: thousands of them waiting for a flush would cost more in
        garbage collection than the reading does.
        """
        self.append(_row_of(record))


def _row_of(record: UsageRecord) -> tuple[Any, ...]:
    return _call_row(
        record.timestamp or time.time(),
        record.provider,
        record.model,
        record.lane,
        getattr(record, "request_id", None),
        getattr(record, "attempt", None),
        record.latency_s,
        record.usage,
        _error_name(getattr(record, "error", None)),
    )


def _call_row(
    ts: float,
    provider: str,
    model: str,
    lane: str | None,
    request_id: str | None,
    attempt: int | None,
    latency_s: float | None,
    u: LmUsage,
    error: str | None,
) -> tuple[Any, ...]:
    """One ledger row (the order of :data:`_COLUMNS`), from a record or straight from a call."""
    return (
        ts,
        provider,
        model,
        # A Redis-backed LaneMux's lane, when the call names none: a context variable, so only
        # readable here, on the caller's side.
        lane if lane is not None else _lane_hint(),
        request_id or None,
        attempt,
        latency_s,
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        u.cached_tokens,
        u.reasoning_tokens,
        u.cost_msats,
        u.cost_usd,
        1 if u.cache_hit else 0,
        u.calls or 1,
        error,
    )


def _lane_hint() -> str | None:
    # The lane a Redis-backed LaneMux is calling; only when that module is already in use.
    lanes = sys.modules.get("dsrs._redis_state.lanes")
    return lanes.current_lane() if lanes is not None else None  # type: ignore[no-any-return]


# --- the process's ledger ----------------------------------------------------------------------

_ledger: LocalLedger | None = None
_ledger_lock = threading.Lock()


def get_ledger() -> LocalLedger:
    """The process's ledger (its path resolved from ``DSRS_CACHE_DIR`` on first write)."""
    global _ledger
    if _ledger is None:
        with _ledger_lock:
            if _ledger is None:
                _ledger = LocalLedger()
    return _ledger


def set_ledger(ledger: LocalLedger | None) -> None:
    """Replace the process's ledger (``None``: a new default one on next use). For tests."""
    global _ledger, _enabled
    old, _ledger = _ledger, ledger
    _enabled = None
    if old is not None and old is not ledger:
        old.close()


_enabled: bool | None = None


def _on() -> bool:
    """Whether ``DSRS_LEDGER`` leaves the ledger on (read once, until :func:`set_ledger`)."""
    global _enabled
    if _enabled is None:
        _enabled = ledger_enabled()
    return _enabled


def record_usage(record: UsageRecord) -> None:
    """The sink: queue ``record`` unless ``DSRS_LEDGER`` turned the ledger off."""
    if _on():
        (_ledger or get_ledger()).record(record)


def record_call(
    provider: str,
    model: str,
    lane: str | None,
    request_id: str,
    attempt: int,
    latency_s: float,
    usage: LmUsage,
    error: str | None,
) -> None:
    """:func:`record_usage` without a :class:`~dsrs.UsageRecord`: the call path's shortcut when
    this ledger is the only sink (the same row, built from the call's own fields)."""
    if _on():
        (_ledger or get_ledger()).append(
            _call_row(time.time(), provider, model, lane, request_id, attempt, latency_s, usage, error)
        )


# --- reading -----------------------------------------------------------------------------------


def usage_summary(
    path: str | os.PathLike[str] | None = None,
    *,
    by: Sequence[str] = ("day", "provider", "lane"),
    since: float | None = None,
) -> dict[str, Any]:
    """Rows summed by ``by`` (names from :data:`GROUPS`) since the epoch time ``since``, and a total."""
    import sqlite3

    for name in by:
        if name not in GROUPS:
            raise ValueError(f"--by must name some of {', '.join(GROUPS)}, got {name!r}")
    file = Path(path) if path is not None else default_path()
    if _ledger is not None and (path is None or Path(path) == _ledger.path):
        _ledger.flush()  # this process's own pending rows count too
    report: dict[str, Any] = {"ledger": str(file), "since": since, "by": list(by), "rows": [], "total": {}}
    metrics = ", ".join(f"{sql} AS {name}" for name, sql in METRICS.items())
    where, params = ("WHERE ts >= ?", (since,)) if since is not None else ("", ())
    if not file.exists():
        report["total"] = dict.fromkeys(METRICS, 0)
        report["total"]["cost_usd"] = 0.0
        return report
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
            rows: list[Any] = []
            total: Any = None
        else:
            # Identifiers come from the GROUPS and METRICS tables (``by`` was checked); values are bound.
            groups = ", ".join(f"{GROUPS[name]} AS {name}" for name in by)
            select = f"SELECT {groups + ', ' if groups else ''}{metrics} FROM calls {where}"  # noqa: S608
            order = f" GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}" if by else ""
            rows = conn.execute(select + order, params).fetchall() if by else []
            total = conn.execute(f"SELECT {metrics} FROM calls {where}", params).fetchone()  # noqa: S608
    finally:
        conn.close()
    names = [*by, *METRICS]
    report["rows"] = [_row(dict(zip(names, r, strict=True))) for r in rows]
    report["total"] = _row(dict(zip(METRICS, total or (), strict=False)))
    return report


def _row(row: dict[str, Any]) -> dict[str, Any]:
    for name in METRICS:
        value = row.get(name)
        row[name] = (0.0 if value is None else round(float(value), 9)) if name == "cost_usd" else int(value or 0)
    return row
