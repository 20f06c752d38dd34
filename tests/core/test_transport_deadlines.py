"""The deadline machinery under both transports: which deadline applies when, and the deadline
scope both use instead of ``asyncio.timeout_at`` (every scope of a loop on one shared timer)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from dsrs.transport import HttpRequest, TransportError, TransportTimeout, _deadlines
from dsrs.transport._deadlines import RequestDeadlines, deadline_scope, timeout_at


async def test_scope_expires_as_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        async with timeout_at(t0 + 0.05):
            await asyncio.sleep(5)
    assert loop.time() - t0 < 0.5


async def test_scope_leaves_a_quick_block_and_outside_cancellation_alone() -> None:
    loop = asyncio.get_running_loop()
    async with timeout_at(loop.time() + 5):
        await asyncio.sleep(0)

    async def cancelled_from_outside() -> None:
        async with timeout_at(loop.time() + 5):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(cancelled_from_outside())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # a cancellation that is not ours stays a cancellation


async def test_a_loop_given_is_not_looked_up_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transports find the running loop once per request (each lookup is a getpid() call)."""
    loop = asyncio.get_running_loop()
    request = HttpRequest("GET", "http://127.0.0.1/", timeout=0.05, idle_timeout=0.01)

    def no_lookup() -> asyncio.AbstractEventLoop:
        raise AssertionError("the running loop was looked up again")

    monkeypatch.setattr(asyncio, "get_running_loop", no_lookup)
    deadline = RequestDeadlines.total_of(request, 600.0, loop)
    with pytest.raises(asyncio.TimeoutError):
        async with timeout_at(deadline[0], loop):
            await asyncio.sleep(5)
    deadlines = RequestDeadlines(request, 600.0, loop)
    assert deadlines.loop is loop and deadlines.reading(False)[1] == "idle_timeout"


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


async def test_scopes_share_one_timer_and_each_expires_at_its_own_time() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ended: dict[str, float] = {}

    async def block(name: str, seconds: float) -> None:
        try:
            async with timeout_at(t0 + seconds):
                await asyncio.sleep(5)
        except asyncio.TimeoutError:
            ended[name] = loop.time() - t0

    # The late one joins first, so the early one must re-arm the timer for itself.
    await asyncio.gather(block("late", 0.3), block("early", 0.1), block("middle", 0.2))
    assert ended["early"] == pytest.approx(0.1, abs=0.08)
    assert ended["middle"] == pytest.approx(0.2, abs=0.08)
    assert ended["late"] == pytest.approx(0.3, abs=0.08)
    assert not _deadlines._watches[loop]._scopes  # all left


async def test_a_finished_scope_is_never_cancelled_and_arms_no_new_timer() -> None:
    loop = asyncio.get_running_loop()
    async with timeout_at(loop.time() + 0.05):
        await asyncio.sleep(0)
    watch = _deadlines._watches[loop]
    assert watch._timer is not None
    armed = watch._timer()
    for _ in range(100):  # later deadlines: the armed timer is kept, no handle per block
        async with timeout_at(loop.time() + 0.05):
            await asyncio.sleep(0)
    assert watch._timer is not None and watch._timer() is armed
    await asyncio.sleep(0.1)  # it fires, finds nothing due, and stays off
    assert not watch.armed and not watch._scopes
    await asyncio.sleep(0.01)  # this task was not cancelled by the stale timer


async def test_a_deadline_already_passed_expires_at_the_first_await() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(asyncio.TimeoutError):
        async with timeout_at(loop.time() - 1):
            await asyncio.sleep(1)


def test_a_closed_loop_is_freed_with_its_armed_timer() -> None:
    import gc
    import weakref

    loop = asyncio.new_event_loop()

    async def one() -> None:
        async with timeout_at(asyncio.get_running_loop().time() + 600):
            await asyncio.sleep(0)

    loop.run_until_complete(one())
    assert _deadlines._watches[loop].armed  # the timer for the 600 s deadline is still pending
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None


async def test_the_aiohttp_transport_finds_its_loop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request on an open session looks the running loop up in no transport code: the session's
    loop is known (each lookup is a getpid() call on Python < 3.12)."""
    pytest.importorskip("aiohttp")
    from dsrs.testing import openai_wire_server
    from dsrs.transport import make_transport

    transport = make_transport("aiohttp")
    real = asyncio.get_running_loop
    ours: list[str] = []

    def counting() -> asyncio.AbstractEventLoop:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("dsrs.transport"):
            ours.append(caller)
        return real()

    with openai_wire_server() as srv:
        request = HttpRequest("POST", srv.url + "/v1/chat/completions", {"content-type": "application/json"}, b"{}")
        try:
            assert (await transport.send(request)).status == 200  # opens the session
            monkeypatch.setattr(asyncio, "get_running_loop", counting)
            for _ in range(3):
                assert (await transport.send(request)).status == 200
            async with transport.stream(request) as resp:
                await resp.aread()
        finally:
            monkeypatch.undo()
            await transport.aclose()
    assert ours == []


def _no_translation(exc: BaseException) -> TransportError:
    raise AssertionError(f"nothing to translate here: {exc!r}")


async def test_an_entered_scope_times_out_as_its_deadline() -> None:
    """``deadline_scope`` (the transports' ``send``) behaves as ``async with timeout_at``."""
    loop = asyncio.get_running_loop()
    deadline = (loop.time() + 0.05, "timeout", 0.05)
    scope = deadline_scope(deadline[0], loop)
    try:
        await asyncio.sleep(5)
    except BaseException as exc:
        err = scope.failed(exc, deadline, _no_translation)
    else:
        raise AssertionError("the deadline did not cancel the block")
    assert isinstance(err, TransportTimeout) and (err.deadline, err.seconds) == ("timeout", 0.05)
    task = asyncio.current_task()
    if sys.version_info >= (3, 11):
        assert task is not None and task.cancelling() == 0  # the cancel was ours, and taken back


async def test_an_entered_scope_passes_outside_cancellation_and_leaves_cleanly() -> None:
    loop = asyncio.get_running_loop()
    deadline = (loop.time() + 5, "timeout", 5.0)

    async def send() -> None:
        scope = deadline_scope(deadline[0], loop)
        try:
            await asyncio.sleep(5)
        except BaseException as exc:
            raise scope.failed(exc, deadline, _no_translation) from None

    task = asyncio.ensure_future(send())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # not a timeout: the caller cancelled
    scope = deadline_scope(deadline[0], loop)
    watch = _deadlines._watches[loop]
    assert scope in watch._scopes
    assert scope.leave(None) is False and scope not in watch._scopes
    scope = deadline_scope(deadline[0], loop)
    err = scope.failed(ValueError("bad header"), deadline, lambda e: TransportError(f"translated {e}"))
    assert str(err) == "translated bad header" and scope not in watch._scopes
