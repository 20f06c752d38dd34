"""The opt-in prompt log: every call's request and response, for ``dsrs logs``.

* Off by default. ``dsrs logs on`` / ``dsrs logs off`` keep the choice in the config directory
  (a ``logs-on`` file beside ``keys.json``); ``DSRS_LOG=1`` / ``DSRS_LOG=0`` override it for one
  process. The choice is read once per process.
* Stored in ``$DSRS_CACHE_DIR/logs.sqlite3`` (``0600``), written in batches off the caller's
  thread (:class:`dsrs._sqlite_batch.BatchedSQLite`).
* Secrets are never stored: the values of stored keys and of the providers' key variables are
  masked, as are credential-shaped strings (``sk-...``, ``Bearer ...``) and options whose name
  says key, token, secret or password. Base URLs and headers are not logged.
* A row: time, request id, provider, model, lane, attempt, duration, error class, the request
  (messages and parameters, JSON), the answer's text and reasoning, finish reason, usage (JSON).
  The text of each field is capped at ``MAX_FIELD_CHARS``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsrs._sqlite_batch import BatchedSQLite

if TYPE_CHECKING:
    import sqlite3

    from dsrs._usage import UsageRecord

__all__ = ["CallLog", "count_logs", "enabled", "get_log", "read_logs", "record_call", "set_enabled", "state"]

DEFAULT_FILENAME = "logs.sqlite3"
FLAG_FILENAME = "logs-on"
MAX_FIELD_CHARS = 200_000
_SECRET_OPTION = re.compile(r"(?i)key|token|secret|password|auth")
_COLUMNS = (
    "ts",
    "request_id",
    "provider",
    "model",
    "lane",
    "attempt",
    "duration_s",
    "error",
    "request",
    "response",
    "reasoning",
    "finish_reason",
    "usage",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY, ts REAL NOT NULL, request_id TEXT,"
    " provider TEXT NOT NULL, model TEXT NOT NULL, lane TEXT, attempt INTEGER, duration_s REAL, error TEXT,"
    " request TEXT, response TEXT, reasoning TEXT, finish_reason TEXT, usage TEXT)",
    "CREATE INDEX IF NOT EXISTS logs_ts ON logs(ts)",
)


def flag_path() -> Path:
    from dsrs._keys import config_dir

    return config_dir() / FLAG_FILENAME


def state() -> tuple[bool, str]:
    """Whether the log is on, and why (``DSRS_LOG`` or the ``dsrs logs on|off`` flag)."""
    env = os.environ.get("DSRS_LOG")
    if env is not None and env.strip():
        on = env.strip().lower() not in ("0", "false", "off", "no")
        return on, f"DSRS_LOG={env.strip()}"
    if flag_path().exists():
        return True, f"`dsrs logs on` ({flag_path()})"
    return False, "off by default; `dsrs logs on` or DSRS_LOG=1 turns it on"


_enabled: bool | None = None


def enabled() -> bool:
    """The process's choice (read once: a flag flipped later takes effect in new processes)."""
    global _enabled
    if _enabled is None:
        _enabled = state()[0]
    return _enabled


def set_enabled(on: bool) -> Path:
    """Persist ``dsrs logs on|off``; return the flag file's path."""
    global _enabled
    path = flag_path()
    if on:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    _enabled = None
    return path


def default_path() -> Path:
    from dsrs._cache.sqlite import default_cache_dir

    return default_cache_dir() / DEFAULT_FILENAME


# --- secrets ------------------------------------------------------------------------------------

_secrets: tuple[str, ...] | None = None


def _known_secrets() -> tuple[str, ...]:
    """Values that must never be written: stored keys and the providers' key variables."""
    global _secrets
    if _secrets is None:
        from dsrs._keys import load_keys
        from dsrs._registry import providers

        names = {n for spec in providers() for n in spec.env_vars if _SECRET_OPTION.search(n)}
        values = {os.environ.get(n) for n in names} | set(load_keys().values())
        # Longest first, so a key containing another is masked whole.
        _secrets = tuple(sorted((v for v in values if v and len(v) >= 6), key=len, reverse=True))
    return _secrets


# Each credential pattern of dsrs.errors needs one of these literals (lowercased); a text holding
# none of them is not searched. If a pattern without such a literal is ever added, every text is.
_TRIGGERS = ("sk-", "gsk_", "aiza", "nsec1", "bearer", "api")


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[Any, ...], bool]:
    from dsrs.errors import _SECRET_PATTERNS

    gated = all(any(t in p.pattern.lower() for t in _TRIGGERS) for p in _SECRET_PATTERNS)
    return _SECRET_PATTERNS, gated


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with known secrets and credential-shaped tokens masked, capped in length."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    patterns, gated = _patterns()
    lowered = text.lower()
    if not gated or any(t in lowered for t in _TRIGGERS):
        for pattern in patterns:
            text = pattern.sub(lambda m: m.group(1) + "***", text) if pattern.groups else pattern.sub("***", text)
    if len(text) > MAX_FIELD_CHARS:
        text = text[:MAX_FIELD_CHARS] + f"… [{len(text) - MAX_FIELD_CHARS} more chars]"
    return text


def _dumps(data: Any) -> str:
    from dsrs import _json

    try:
        return _json.dumps(data).decode("utf-8")
    except (TypeError, ValueError):  # an option holding an object JSON has no form for
        return json.dumps(data, default=str, ensure_ascii=False)


def _request_json(request: Any) -> str | None:
    if request is None:
        return None
    data: dict[str, Any] = {}
    messages = getattr(request, "messages", None)
    if messages is not None:
        data["messages"] = [m.to_dict() if hasattr(m, "to_dict") else str(m) for m in messages]
    for name in ("temperature", "max_tokens", "seed", "stop", "tool_choice"):
        value = getattr(request, name, None)
        if value is not None:
            data[name] = value
    tools = getattr(request, "tools", None)
    if tools:
        data["tools"] = [t.to_dict() if hasattr(t, "to_dict") else str(t) for t in tools]
    fmt = getattr(request, "response_format", None)
    if fmt is not None:
        data["response_format"] = fmt.to_dict() if hasattr(fmt, "to_dict") else str(fmt)
    options = getattr(request, "options", None)
    if isinstance(options, Mapping) and options:
        data["options"] = {str(k): ("***" if _SECRET_OPTION.search(str(k)) else v) for k, v in options.items()}
    return _dumps(data)


class CallLog(BatchedSQLite):
    """The prompt-log file (see the module docstring)."""

    table = "logs"
    columns = _COLUMNS
    schema = _SCHEMA
    what = "log"

    def default_path(self) -> Path:
        return default_path()

    def prune(self, conn: sqlite3.Connection) -> None:
        try:
            days = float(os.environ.get("DSRS_LOG_DAYS", "90"))
        except ValueError:
            days = 90.0
        conn.execute("DELETE FROM logs WHERE ts < ?", (time.time() - days * 86400,))

    def clean(self, item: Any) -> tuple[Any, ...]:
        # Serializing and scrubbing happen here, on the writer thread, not in the caller's call.
        record: UsageRecord = item
        secrets = _known_secrets()

        def text(value: Any) -> str | None:
            return None if value is None else scrub(str(value), secrets)

        response = getattr(record, "response", None)
        attempt = getattr(record, "attempt", None)
        duration = record.latency_s
        usage = record.usage
        return (
            record.timestamp or time.time(),
            _short(getattr(record, "request_id", None) or None),
            str(record.provider)[:200],
            str(record.model)[:500],
            None if record.lane is None else str(record.lane)[:200],
            attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
            duration if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
            _error_text(getattr(record, "error", None), secrets),
            text(_request_json(getattr(record, "request", None))),
            text(getattr(response, "text", None)),
            text(getattr(response, "reasoning", None)),
            _short(getattr(response, "finish_reason", None)),
            _dumps(usage.to_dict()) if hasattr(usage, "to_dict") else None,
        )

    def record(self, record: UsageRecord) -> None:
        """Queue one finished call (serialized on the writer thread)."""
        self.append(record)


def _short(value: Any) -> str | None:
    # Ids and finish reasons are short words; anything longer is cut rather than scanned.
    return None if value is None else str(value)[:64]


def _error_text(error: Any, secrets: Iterable[str]) -> str | None:
    if error is None:
        return None
    if isinstance(error, type):
        return error.__name__
    if isinstance(error, BaseException):
        return scrub(f"{type(error).__name__}: {error}", secrets)[:2000]
    return scrub(str(error), secrets)[:2000]


_log: CallLog | None = None


def get_log() -> CallLog:
    global _log
    if _log is None:
        _log = CallLog()
    return _log


def set_log(log: CallLog | None) -> None:
    """Replace the process's log (``None``: a new default one); re-reads the on/off choice. For tests."""
    global _log, _enabled, _secrets
    old, _log = _log, log
    _enabled = None
    _secrets = None
    if old is not None and old is not log:
        old.close()


def record_call(record: UsageRecord) -> None:
    """The sink (called only when :func:`enabled`)."""
    (_log or get_log()).record(record)


def count_logs(path: str | os.PathLike[str] | None = None) -> int:
    """How many entries the log holds."""
    import sqlite3

    file = Path(path) if path is not None else default_path()
    if not file.exists():
        return 0
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
            return 0
        return int(conn.execute("SELECT COUNT(*) FROM logs").fetchone()[0])
    finally:
        conn.close()


def read_logs(path: str | os.PathLike[str] | None = None, *, limit: int = 3) -> list[dict[str, Any]]:
    """The newest ``limit`` entries, oldest first (``limit=0``: all)."""
    import sqlite3

    if limit < 0:
        raise ValueError(f"-n must be >= 0, got {limit}")
    file = Path(path) if path is not None else default_path()
    if _log is not None and file == _log.path:
        _log.flush()
    if not file.exists():
        return []
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
            return []
        cols = ", ".join(_COLUMNS)
        if limit:
            rows = conn.execute(f"SELECT {cols} FROM logs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()  # noqa: S608
        else:
            rows = conn.execute(f"SELECT {cols} FROM logs ORDER BY id DESC").fetchall()  # noqa: S608
    finally:
        conn.close()
    out = []
    for row in reversed(rows):
        entry = dict(zip(_COLUMNS, row, strict=True))
        for name in ("request", "usage"):
            if entry[name] is not None:
                try:
                    entry[name] = json.loads(entry[name])
                except ValueError:
                    pass  # a capped field is no longer JSON: shown as the text it is
        out.append(entry)
    return out
