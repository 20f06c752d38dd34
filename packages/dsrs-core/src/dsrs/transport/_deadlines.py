"""The deadlines of one request, as event-loop times, and a cancel-at-deadline context manager
(all of a loop's deadlines share one timer: see :class:`_Watch`)."""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from dsrs.transport._base import HttpRequest, TransportError, TransportTimeout

__all__ = ["Deadline", "RequestDeadlines", "deadline_scope", "timeout_at"]

#: (loop time, name of the bound, its value in seconds)
Deadline = tuple[float, str, float]


class RequestDeadlines:
    """When each phase of ``request`` must be done (see :mod:`dsrs.transport._base`)."""

    __slots__ = ("_first", "_idle", "_total", "loop")

    def __init__(
        self, request: HttpRequest, default_timeout: float, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        # The running loop, found once: each lookup is a getpid() system call (asyncio checks for
        # a fork), ~1 µs on a VM, and a streamed response reads many chunks.
        self.loop = loop = loop if loop is not None else asyncio.get_running_loop()
        now = loop.time()
        total = request.timeout if request.timeout is not None else default_timeout
        self._total: Deadline = (now + total, "timeout", total)
        fb = request.first_byte_timeout
        self._first: Deadline = (now + fb, "first_byte_timeout", fb) if fb is not None else self._total
        self._idle = request.idle_timeout

    @staticmethod
    def total_of(request: HttpRequest, default_timeout: float, loop: asyncio.AbstractEventLoop) -> Deadline:
        """Just the whole exchange's deadline (what ``send`` needs), in ``loop``'s time."""
        total = request.timeout if request.timeout is not None else default_timeout
        return (loop.time() + total, "timeout", total)

    @property
    def total(self) -> Deadline:
        return self._total

    def opening(self) -> Deadline:
        """Connect and headers: before the total deadline and before the first byte's."""
        return min(self._first, self._total)

    def reading(self, first: bool) -> Deadline:
        """The next body read: the first byte's deadline, or ``idle_timeout`` from now; never past the total."""
        if first:
            return min(self._first, self._total)
        if self._idle is None:
            return self._total
        idle: Deadline = (self.loop.time() + self._idle, "idle_timeout", self._idle)
        return min(idle, self._total)

    @staticmethod
    def expired(deadline: Deadline) -> TransportTimeout:
        _, name, seconds = deadline
        what = "the request did not complete" if name == "timeout" else "no data from the server"
        return TransportTimeout(f"{what} within {name}={seconds:g}s", deadline=name, seconds=seconds)


class _Watch:
    """Every open deadline scope of one event loop, on one timer.

    A timer per request costs more than the rest of the transport's own work (creating and
    cancelling a ``TimerHandle`` per call measured ~10 µs a request here, against ~0.3 µs for this).
    So scopes only join and leave a set; the one timer is armed for the earliest deadline and
    re-armed only for an earlier one. When it fires it cancels the scopes whose time has come and
    re-arms for the next (a scope that already left costs nothing). Requests with the same timeout
    have rising deadlines, so a busy loop re-arms about once per timeout.

    The watch holds neither its loop nor its timer strongly (the timer only weakly: the loop's own
    schedule keeps it), so a closed loop is freed with everything on it.
    """

    __slots__ = ("__weakref__", "_armed_at", "_scopes", "_timer")

    def __init__(self) -> None:
        self._scopes: set[_Scope] = set()
        self._timer: weakref.ref[asyncio.TimerHandle] | None = None
        self._armed_at = 0.0

    def join(self, scope: _Scope, loop: asyncio.AbstractEventLoop) -> None:
        self._scopes.add(scope)
        timer = self._timer() if self._timer is not None else None
        if timer is None or scope.when < self._armed_at:
            if timer is not None:
                timer.cancel()
            self._arm(loop, scope.when)

    def leave(self, scope: _Scope) -> None:
        self._scopes.discard(scope)

    @property
    def armed(self) -> bool:
        return self._timer is not None and self._timer() is not None

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._armed_at = when
        self._timer = weakref.ref(loop.call_at(when, self._fire, loop))

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        due = [s for s in self._scopes if s.when <= now]
        for scope in due:
            self._scopes.discard(scope)
            scope.expire()
        if self._scopes:
            self._arm(loop, min(s.when for s in self._scopes))


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Watch] | None = None


class _Scope:
    """``asyncio.timeout_at``'s behaviour on the loop's shared timer: at ``when`` the task is
    cancelled and the block raises ``TimeoutError``; a cancellation from outside stays one."""

    __slots__ = ("_cancelling", "_expired", "_loop", "_task", "_watch", "when")

    def __init__(self, when: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.when = when
        self._loop = loop
        self._expired = False
        self._task: asyncio.Task[object] | None = None
        self._watch: _Watch | None = None
        self._cancelling = 0

    def enter(self) -> _Scope:
        """Start the deadline (what ``async with`` does, without a coroutine); returns the scope."""
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        task = asyncio.current_task(loop)  # given the loop: no second lookup (a getpid() call)
        if task is None:
            raise RuntimeError("a request deadline needs to run inside an asyncio task")
        self._task = task
        if sys.version_info >= (3, 11):
            self._cancelling = task.cancelling()
        global _last
        last = _last  # the loop of the previous request, weakly, and its watch: the usual case
        if last is not None and last[0]() is loop:
            watch = last[1]
        else:
            found = _watches.get(loop)
            watch = found if found is not None else _watches.setdefault(loop, _Watch())
            _last = (weakref.ref(loop), watch)
        self._watch = watch
        watch.join(self, loop)
        return self

    def expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    def leave(self, et: type[BaseException] | None) -> bool:
        """End the deadline; ``True`` when the block ended (with ``et``) because of it."""
        if self._watch is not None:
            self._watch.leave(self)
        if not self._expired:
            return False
        if sys.version_info >= (3, 11):
            assert self._task is not None
            # Ours only when no one else cancelled the task meanwhile (as asyncio.timeout decides).
            return self._task.uncancel() <= self._cancelling and et is asyncio.CancelledError
        return et is asyncio.CancelledError

    def failed(
        self, exc: BaseException, deadline: Deadline, translate: Callable[[BaseException], TransportError]
    ) -> TransportError:
        """End the deadline after the block raised ``exc``; the transport error to raise for it.

        This deadline (or any timeout) is a :class:`TransportTimeout` naming ``deadline``, a
        :class:`TransportError` stays itself, other exceptions go through ``translate``; a
        cancellation from outside (and ``KeyboardInterrupt`` etc.) is raised again unchanged.
        """
        if self.leave(type(exc)) or isinstance(exc, asyncio.TimeoutError):
            return RequestDeadlines.expired(deadline)
        if isinstance(exc, TransportError):
            return exc
        if isinstance(exc, Exception):
            return translate(exc)
        raise exc

    async def __aenter__(self) -> None:
        self.enter()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.leave(et):
            raise asyncio.TimeoutError


def timeout_at(when: float, loop: asyncio.AbstractEventLoop | None = None) -> AbstractAsyncContextManager[None]:
    """Cancel the block at loop time ``when``; it then raises :class:`asyncio.TimeoutError`.
    ``loop``: the running loop, when the caller has it already."""
    return _Scope(when, loop)


def deadline_scope(when: float, loop: asyncio.AbstractEventLoop | None = None) -> _Scope:
    """:func:`timeout_at` already entered, for the hot paths (two coroutines fewer than ``async
    with``): end it with ``scope.leave(None)`` after the block, or ``scope.failed(exc, ...)``."""
    return _Scope(when, loop).enter()
