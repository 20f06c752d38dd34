"""The usage ledger: tokens, cost and calls per day, provider, lane and model, in Redis.

Installed as a ``dsrs_usage_recorded`` sink, it sees every finished call of the process. Recording
never waits for Redis: counters are added up in memory and a daemon thread pushes them with
``HINCRBY`` (one pipeline per flush, default every 0.2 s, and at exit). While Redis is lost the
counters keep adding up here and are pushed when it is back, so nothing is lost or counted twice
(short of the process dying during the outage). ``dsrs usage`` reads it back.

Layout: one hash per UTC day, ``{namespace}:usage:YYYY-MM-DD``, field
``provider<TAB>lane<TAB>model<TAB>metric``; the set ``{namespace}:usage-days`` lists the days.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from dsrs import _runtime
from dsrs._redis_state._link import REDIS_ERRORS, RedisLink
from dsrs._redis_state._scripts import LEDGER_ADD, Script
from dsrs._redis_state.lanes import current_lane
from dsrs._usage import UsageRecord, msats_per_usd
from dsrs.plugins import hookimpl

__all__ = ["METRICS", "UsageLedger", "UsageRow"]

log = logging.getLogger("dsrs._redis_state")

#: Counters kept per (day, provider, lane, model).
METRICS = (
    "calls",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_msats",
    "unpriced_calls",
)
_NO_LANE = "-"


@dataclass
class UsageRow:
    """Counters of one group (any of day/provider/lane/model may be ``None`` when summed over)."""

    day: str | None
    provider: str | None
    lane: str | None
    model: str | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRICS, 0))

    def add(self, other: Mapping[str, int]) -> None:
        for k, v in other.items():
            self.counts[k] = self.counts.get(k, 0) + int(v)

    @property
    def cost_usd(self) -> float:
        return self.counts.get("cost_msats", 0) / msats_per_usd()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"day": self.day, "provider": self.provider, "lane": self.lane, "model": self.model}
        d.update(self.counts)
        d["cost_usd"] = round(self.cost_usd, 9)
        return d


def _day(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts or time.time(), tz=_dt.timezone.utc).date().isoformat()


def _clean(part: str | None) -> str:
    return (part or _NO_LANE).replace("\t", " ")


_LEDGER_ADD = Script(LEDGER_ADD)
#: The largest count one ledger field holds: integers stay exact in Lua (doubles) up to 2^53.
_MAX_COUNT = 2**53 - 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class UsageLedger:
    """Per-day usage counters shared in Redis; also a ``dsrs_usage_recorded`` plugin."""

    def __init__(self, link: RedisLink, *, flush_interval: float = 0.2) -> None:
        self.link = link
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], int] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._failing_since: float | None = None
        self._plugin_name: str | None = None
        self._atexit = False
        #: A batch sent but not confirmed (id, counters): re-sent as it is, so never counted twice.
        self._unsent: tuple[str, dict[tuple[str, str], int]] | None = None
        _runtime.on_fork(self)

    # --- recording -----------------------------------------------------------------------------

    def record(self, record: UsageRecord) -> None:
        """Count one finished call (never blocks on Redis); failed attempts are not calls here."""
        if record.error is not None:
            return
        u = record.usage
        lane = record.lane if record.lane is not None else current_lane()
        group = "\t".join((_clean(record.provider), _clean(lane), _clean(record.model)))
        day = _day(record.timestamp)
        values: dict[str, int] = {"calls": max(u.calls, 1)}
        if u.cache_hit:
            values["cache_hits"] = max(u.calls, 1)
        else:
            values.update(
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                total_tokens=u.total_tokens,
                cached_tokens=u.cached_tokens,
                reasoning_tokens=u.reasoning_tokens,
            )
            if u.cost_msats is None:
                values["unpriced_calls"] = max(u.calls, 1)
            else:
                values["cost_msats"] = u.cost_msats
        with self._lock:
            for metric, n in values.items():
                if n:
                    k = (day, f"{group}\t{metric}")
                    self._pending[k] = self._pending.get(k, 0) + n
        self._ensure_thread()

    @hookimpl
    def dsrs_usage_recorded(self, record: UsageRecord) -> None:
        """The sink hook: count every finished call of this process."""
        self.record(record)

    def install(self) -> None:
        """Register as a usage sink so every call of this process is counted."""
        if self._plugin_name is None:
            from dsrs.plugins import register_plugin

            self._plugin_name = register_plugin(self, name=f"dsrs-redis-ledger-{id(self)}")

    def uninstall(self) -> None:
        if self._plugin_name is not None:
            from dsrs.plugins import unregister_plugin

            try:
                unregister_plugin(self._plugin_name)
            except ValueError:  # pragma: no cover - already gone with a reset host
                pass
            self._plugin_name = None

    # --- pushing ---------------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="dsrs-redis-ledger", daemon=True)
            self._thread.start()
            if not self._atexit:
                atexit.register(self.close)
                self._atexit = True

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if (
                self._failing_since is not None
                and time.monotonic() - self._failing_since < self.link.settings.retry_interval
            ):
                continue
            self.flush()

    def flush(self) -> bool:
        """Push the counters now (blocking); True when nothing is left to push.

        A batch is applied by one Lua script: all of it or none of it, and at most once (a batch
        whose reply was lost is re-sent with the same id and skipped by the server). A batch the
        server refuses (a count that would overflow) is dropped with a log line: it is not an
        outage, and re-sending it would never succeed.
        """
        with self._lock:
            batch = self._unsent
            if batch is None:
                pending, self._pending = self._pending, {}
                if not pending:
                    return True
                batch = self._unsent = (uuid.uuid4().hex, pending)
        batch_id, pending = batch
        by_day: dict[str, list[tuple[str, int]]] = {}
        for (day, fld), n in pending.items():
            by_day.setdefault(day, []).append((fld, min(max(0, int(n)), _MAX_COUNT)))
        keys = [self.link.key("usage-days"), self.link.key("usage-batch", batch_id)]
        args: list[Any] = [self.link.settings.ledger_retention_days * 86400]
        for day, fields in by_day.items():
            keys.append(self.link.key("usage", day))
            args.extend((day, len(fields)))
            for fld, n in fields:
                args.extend((fld, n))
        try:
            result = _LEDGER_ADD.run_sync(self.link.sync_client(), keys, args)
        except REDIS_ERRORS as exc:
            if self._failing_since is None:
                # Logged, not warned: this runs on the writer thread; the call path warns.
                log.warning("usage ledger: Redis unreachable (%s); keeping counts until it is back", exc)
            self._failing_since = time.monotonic()
            return False
        with self._lock:
            self._unsent = None
        if isinstance(result, list) and result and _text(result[0]) == "refused":
            field = _text(result[1]) if len(result) > 1 else "?"
            log.warning("usage ledger: Redis refused a batch (a count of %s would overflow); it was dropped", field)
        if self._failing_since is not None:
            log.warning("usage ledger: Redis is back; pushed counts kept meanwhile")
            self._failing_since = None
        with self._lock:
            return not self._pending

    def close(self, timeout: float = 2.0) -> None:
        """Stop the writer and push what is left (bounded by ``timeout``)."""
        self._stop = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self.flush()

    def after_fork(self) -> None:
        """In a forked child: the parent's unflushed counts are the parent's to push (never
        counted twice); the writer thread did not survive and starts again on the next record."""
        self._lock = threading.Lock()
        self._pending = {}
        self._unsent = None
        self._thread = None
        self._wake = threading.Event()
        self._failing_since = None

    # --- reading ---------------------------------------------------------------------------------

    def days(self) -> list[str]:
        raw = cast("set[Any]", self.link.sync_client().smembers(self.link.key("usage-days")))
        return sorted(d.decode() if isinstance(d, bytes) else str(d) for d in raw)

    def rows(self, *, since: str | None = None, until: str | None = None) -> list[UsageRow]:
        """One row per (day, provider, lane, model), days in ``[since, until]`` (ISO dates)."""
        days = [d for d in self.days() if (since is None or d >= since) and (until is None or d <= until)]
        client = self.link.sync_client()
        pipe = client.pipeline(transaction=False)
        for d in days:
            pipe.hgetall(self.link.key("usage", d))
        rows: dict[tuple[str, str, str, str], UsageRow] = {}
        for d, data in zip(days, pipe.execute(), strict=True):
            for raw_field, raw_value in data.items():
                text = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
                parts = text.split("\t")
                if len(parts) != 4:
                    continue
                provider, lane, model, metric = parts
                key = (d, provider, lane, model)
                row = rows.get(key)
                if row is None:
                    row = rows[key] = UsageRow(d, provider, None if lane == _NO_LANE else lane, model)
                row.add({metric: int(raw_value)})
        return [rows[k] for k in sorted(rows)]

    def summary(
        self, *, by: Iterable[str] = ("day", "provider", "lane"), since: str | None = None, until: str | None = None
    ) -> list[UsageRow]:
        """Rows summed over what is not in ``by`` (a subset of day, provider, lane, model)."""
        keep = set(by)
        unknown = keep - {"day", "provider", "lane", "model"}
        if unknown:
            raise ValueError(f"cannot group usage by {sorted(unknown)}; use day, provider, lane or model")
        out: dict[tuple[str | None, ...], UsageRow] = {}
        for row in self.rows(since=since, until=until):
            key = tuple(getattr(row, name) if name in keep else None for name in ("day", "provider", "lane", "model"))
            acc = out.get(key)
            if acc is None:
                acc = out[key] = UsageRow(key[0], key[1], key[2], key[3])
            acc.add(row.counts)
        return [out[k] for k in sorted(out, key=lambda k: tuple("" if p is None else p for p in k))]

    def total(self, *, since: str | None = None, until: str | None = None) -> UsageRow:
        row = UsageRow(None, None, None, None)
        for r in self.rows(since=since, until=until):
            row.add(r.counts)
        return row

    def clear(self) -> None:
        """Delete the ledger of this namespace (every day)."""
        client = self.link.sync_client()
        days = self.days()
        keys = [self.link.key("usage", d) for d in days] + [self.link.key("usage-days")]
        client.delete(*keys)
