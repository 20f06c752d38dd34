"""The local usage ledger (``usage.sqlite3``): batched writes, summaries, hostile values, bad files."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs import _ledger
from dsrs._ledger import LocalLedger, usage_summary
from dsrs._usage import LmUsage, UsageRecord


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalLedger]:
    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DSRS_LEDGER", raising=False)
    led = LocalLedger(flush_interval=3600)  # flushed by the tests, not the timer
    _ledger.set_ledger(led)
    yield led
    _ledger.set_ledger(None)


def _record(provider: str = "acme", model: str = "m1", **kw: object) -> UsageRecord:
    usage = kw.pop("usage", None) or LmUsage.from_tokens(10, 5).with_cost(dsrs.Cost(msats=30))
    return UsageRecord(provider=provider, model=model, usage=usage, timestamp=time.time(), **kw)  # type: ignore[arg-type]


def test_every_call_is_recorded_without_prompt_text(ledger: LocalLedger, tmp_path: Path) -> None:
    lm = dsrs.LM("fake:echo")
    spent = lm.call("the zebra-quokka question").usage + lm.call("another unusual-marmoset prompt").usage
    report = usage_summary(by=("provider", "model"))
    (row,) = report["rows"]
    assert (row["provider"], row["model"], row["calls"]) == ("fake", "echo", 2)
    assert row["prompt_tokens"] == spent.prompt_tokens > 0 and row["cost_msats"] == spent.cost_msats
    ledger.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("usage.sqlite3")]
    assert files and b"".join(p.read_bytes() for p in files).find(b"quokka") == -1
    if sys.platform != "win32":
        assert stat.S_IMODE((tmp_path / "usage.sqlite3").stat().st_mode) == 0o600


def test_ledger_off(ledger: LocalLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_LEDGER", "0")
    _ledger.set_ledger(ledger)  # re-reads DSRS_LEDGER
    dsrs.LM("fake:echo").call("hi")
    assert ledger.flush() == 0 and not ledger.path.exists()


def test_groups_failures_lanes_and_since(ledger: LocalLedger) -> None:
    old = UsageRecord(provider="acme", model="m1", usage=LmUsage.from_tokens(1, 1), timestamp=time.time() - 3 * 86400)
    ledger.record(old)
    ledger.record(_record(lane="fast", request_id="r1", attempt=1))
    ledger.record(_record(lane="fast", request_id="r2", attempt=1, error="RateLimitError", usage=LmUsage()))
    ledger.record(_record(lane="slow", request_id="r2", attempt=2))
    ledger.record(_record(usage=LmUsage.from_tokens(10, 5).with_cost(dsrs.Cost(msats=30)).as_cache_hit()))
    ledger.record(_record(model="unpriced", usage=LmUsage.from_tokens(7, 7)))
    rows = {(r["lane"], r["error"]): r for r in usage_summary(by=("lane", "error"))["rows"]}
    assert rows[("fast", "RateLimitError")]["errors"] == 1
    assert rows[("fast", "-")]["cost_msats"] == 30 and rows[("slow", "-")]["calls"] == 1
    total = usage_summary(by=())["total"]
    assert total["calls"] == 5 and total["errors"] == 1 and total["cache_hits"] == 1  # a failure is no call
    assert total["prompt_tokens"] == 1 + 10 + 10 + 7  # the cache hit spent nothing
    assert total["unpriced_calls"] == 2  # the old one and "unpriced"
    recent = usage_summary(by=("model",), since=time.time() - 86400)
    assert recent["total"]["calls"] == 4


def test_hostile_usage_numbers_do_not_poison_the_ledger(ledger: LocalLedger) -> None:
    bad = LmUsage(prompt_tokens="12", completion_tokens=float("nan"), total_tokens=-5, cost_msats="x")  # type: ignore[arg-type]
    ledger.record(UsageRecord(provider="p\0q", model="m" * 10_000, usage=bad, lane=object()))  # type: ignore[arg-type]
    huge = LmUsage(prompt_tokens=2**70, completion_tokens=float("inf"), cost_msats=-(2**80), cost_usd=float("-inf"))  # type: ignore[arg-type]
    ledger.record(UsageRecord(provider="p", model="m", usage=huge, latency_s=float("nan"), attempt=2**90))
    ledger.record(_record())
    assert ledger.flush() == 3 and ledger.dropped == 0
    total = usage_summary(by=())["total"]
    assert total["calls"] == 3 and total["total_tokens"] == 15
    assert total["prompt_tokens"] == 10 + 2**53  # capped, not wrapped around or lost


def test_lying_numbers_in_a_bindable_row_are_clamped_by_the_summary(ledger: LocalLedger) -> None:
    lying = LmUsage(prompt_tokens=-50, completion_tokens=3, total_tokens=-47, cost_msats=5, cost_usd=float("inf"))
    ledger.record(UsageRecord(provider="p", model="m", usage=lying, timestamp=time.time()))
    assert ledger.flush() == 1
    total = usage_summary(by=())["total"]
    assert (total["prompt_tokens"], total["completion_tokens"], total["total_tokens"]) == (0, 3, 0)
    assert total["cost_usd"] == 0.0 and total["calls"] == 1


def test_unknown_group_names_the_parameter(ledger: LocalLedger) -> None:
    with pytest.raises(ValueError, match=r"--by must name some of day, provider, lane, model, error, got 'colour'"):
        usage_summary(by=("colour",))


def test_background_thread_writes_batches(tmp_path: Path) -> None:
    led = LocalLedger(tmp_path / "u.sqlite3", flush_interval=0.05)
    for _ in range(500):
        led.record(_record())
    deadline = time.monotonic() + 5
    while led.written < 500 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert led.written == 500
    led.close()


def test_a_locked_file_keeps_rows_for_the_next_flush(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "u.sqlite3"
    led = LocalLedger(path, flush_interval=3600, busy_timeout_s=0.05, max_pending=3)
    led.record(_record())
    assert led.flush() == 1
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="dsrs.ledger"):
            for _ in range(5):
                led.record(_record())  # only 3 are kept: max_pending
            assert led.flush() == 0
        assert "will retry" in caplog.text and "rows dropped so far" in caplog.text  # once a minute
        assert led.dropped == 2
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert led.flush() == 3
    assert usage_summary(path, by=())["total"]["calls"] == 4
    led.close()


def test_a_corrupt_file_turns_the_ledger_off_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "u.sqlite3"
    path.write_bytes(b"not a database " * 400)
    led = LocalLedger(path, flush_interval=3600)
    led.record(_record())
    with caplog.at_level(logging.WARNING, logger="dsrs.ledger"):
        assert led.flush() == 0
        led.record(_record())
        assert led.flush() == 0
    assert led.broken is not None and "DatabaseError" in led.broken
    assert caplog.text.count("is unusable") == 1


def test_fork_child_does_not_write_the_parents_rows(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    path = tmp_path / "u.sqlite3"
    led = LocalLedger(path, flush_interval=3600)
    led.record(_record())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0 if led.flush() == 0 else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert led.flush() == 1
    led.close()


def test_close_stops_the_writer_thread_and_a_later_record_restarts_it(tmp_path: Path) -> None:
    led = LocalLedger(tmp_path / "u.sqlite3", flush_interval=0.05)
    led.record(_record())
    thread = led._thread
    assert thread is not None and thread.is_alive()
    led.close()
    assert not thread.is_alive() and led.written == 1
    led.record(_record())
    led.close()
    assert led.written == 2 and usage_summary(tmp_path / "u.sqlite3", by=())["total"]["calls"] == 2


def test_an_unwritable_directory_stops_the_writer_after_a_few_tries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    led = LocalLedger(blocker / "usage.sqlite3", flush_interval=3600)
    with caplog.at_level(logging.WARNING, logger="dsrs.ledger"):
        for _ in range(6):
            led.record(_record())
            led.flush()
    assert led.broken is not None and "writing it is off" in caplog.text
    assert caplog.text.count("writing it is off") == 1 and led.written == 0
    led.record(_record())  # ignored from now on: no memory held, no more lines
    assert led.flush() == 0 and not led._pending


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {', '.join(_ledger._COLUMNS[1:])} FROM calls ORDER BY rowid").fetchall()


def test_the_call_path_shortcut_writes_the_row_a_usage_record_would(
    ledger: LocalLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With dsrs-core's sink alone, LM calls skip the UsageRecord (dsrs._ledger.record_call); a
    # second sink makes them go through the hook with a record. The two rows must be the same.
    seen: list[UsageRecord] = []

    class Second:
        @dsrs.plugins.hookimpl
        def dsrs_usage_recorded(self, record: UsageRecord) -> None:
            seen.append(record)

    monkeypatch.setattr(_ledger, "_lane_hint", lambda: None)
    dsrs.LM("fake:echo").call("first")
    dsrs.plugins.register_plugin(Second(), name="second-sink")
    try:
        dsrs.LM("fake:echo").call("first")
    finally:
        dsrs.plugins.unregister_plugin("second-sink")
    assert len(seen) == 1
    assert ledger.flush() == 2
    shortcut, hooked = _rows(ledger.path)
    # duration and request id differ per call; everything else is the same row
    skip = {_ledger._COLUMNS.index(c) - 1 for c in ("request_id", "duration_s")}
    assert [v for i, v in enumerate(shortcut) if i not in skip] == [v for i, v in enumerate(hooked) if i not in skip]
    assert shortcut[0] == "fake" and shortcut[3] and hooked[3]  # request ids were stored


def test_a_batch_goes_in_as_multi_row_inserts_with_the_values_executemany_stores(tmp_path: Path) -> None:
    rows = [
        (time.time(), "p", "m", None, "id1", 1, 0.25, 10, 5, 15, 0, 0, 30, 0.0001, 0, 1, None),
        (time.time(), "p", "m\u00e9\U0001f600", "lane", None, None, None, 1, 2, 3, 0, 0, None, None, 1, 1, "Err"),
    ]
    batched = LocalLedger(tmp_path / "a.sqlite3", flush_interval=3600)
    batched._pending = list(rows) * 60  # more than one chunk (58 rows of 17 values), and a partial one
    assert batched.flush() == 120
    plain = LocalLedger(tmp_path / "b.sqlite3", flush_interval=3600)
    conn = plain._connect()
    conn.executemany(plain._insert, list(rows) * 60)
    assert _rows(batched.path) == _rows(plain.path)
    with sqlite3.connect(batched.path) as c:
        types = c.execute("SELECT typeof(ts), typeof(cost_msats), typeof(cost_usd), typeof(lane) FROM calls").fetchall()
    assert types[0] == ("real", "integer", "real", "null")


def test_a_row_sqlite_cannot_bind_still_goes_in(tmp_path: Path) -> None:
    led = LocalLedger(tmp_path / "u.sqlite3", flush_interval=3600)
    led._pending = [(time.time(), "p", "m", None, None, None, None, 2**70, 1, 1, 0, 0, None, None, 0, 1, None)]
    assert led.flush() == 1  # too big for SQLite: the batch is normalized, then stored
    (row,) = _rows(led.path)
    assert row[:2] == ("p", "m") and isinstance(row[6], int)
