"""The deadline machinery under both transports: which deadline applies when, and the Python 3.10
stand-in for ``asyncio.timeout_at`` (run here on every version, so it is tested where 3.11+ runs)."""

from __future__ import annotations

import asyncio

import pytest

from dsrs.transport import HttpRequest
from dsrs.transport._deadlines import RequestDeadlines, _CancelAt


async def test_cancel_at_expires_as_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        async with _CancelAt(t0 + 0.05):
            await asyncio.sleep(5)
    assert loop.time() - t0 < 0.5


async def test_cancel_at_leaves_a_quick_block_and_outside_cancellation_alone() -> None:
    loop = asyncio.get_running_loop()
    async with _CancelAt(loop.time() + 5):
        await asyncio.sleep(0)

    async def cancelled_from_outside() -> None:
        async with _CancelAt(loop.time() + 5):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(cancelled_from_outside())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # a cancellation that is not ours stays a cancellation


async def test_which_deadline_applies() -> None:
    loop = asyncio.get_running_loop()
    now = loop.time()
    d = RequestDeadlines(HttpRequest("GET", "http://127.0.0.1/", timeout=10.0, first_byte_timeout=2.0), 600.0)
    assert d.opening()[1:] == ("first_byte_timeout", 2.0) and d.opening()[0] == pytest.approx(now + 2.0, abs=0.1)
    assert d.reading(True)[1] == "first_byte_timeout"
    assert d.reading(False)[1:] == ("timeout", 10.0)  # no idle_timeout: the total
    idle = RequestDeadlines(HttpRequest("GET", "http://127.0.0.1/", timeout=10.0, idle_timeout=0.5), 600.0)
    assert idle.opening()[1] == "timeout" and idle.reading(False)[1:] == ("idle_timeout", 0.5)
    late = RequestDeadlines(HttpRequest("GET", "http://127.0.0.1/", timeout=0.1, idle_timeout=5.0), 600.0)
    assert late.reading(False)[1] == "timeout"  # an idle deadline never outlives the total
    default = RequestDeadlines(HttpRequest("GET", "http://127.0.0.1/"), 600.0)
    assert default.total[1:] == ("timeout", 600.0)
    err = RequestDeadlines.expired(idle.reading(False))
    assert (err.deadline, err.seconds, str(err)) == (
        "idle_timeout",
        0.5,
        "no data from the server within idle_timeout=0.5s",
    )
