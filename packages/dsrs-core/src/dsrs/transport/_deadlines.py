"""The deadlines of one request, as event-loop times, and a cancel-at-deadline context manager."""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from dsrs.transport._base import HttpRequest, TransportTimeout

__all__ = ["Deadline", "RequestDeadlines", "timeout_at"]

#: (loop time, name of the bound, its value in seconds)
Deadline = tuple[float, str, float]


class RequestDeadlines:
    """When each phase of ``request`` must be done (see :mod:`dsrs.transport._base`)."""

    __slots__ = ("_first", "_idle", "_total")

    def __init__(self, request: HttpRequest, default_timeout: float) -> None:
        now = asyncio.get_running_loop().time()
        total = request.timeout if request.timeout is not None else default_timeout
        self._total: Deadline = (now + total, "timeout", total)
        fb = request.first_byte_timeout
        self._first: Deadline = (now + fb, "first_byte_timeout", fb) if fb is not None else self._total
        self._idle = request.idle_timeout

    @staticmethod
    def total_of(request: HttpRequest, default_timeout: float) -> Deadline:
        """Just the whole exchange's deadline (what ``send`` needs)."""
        total = request.timeout if request.timeout is not None else default_timeout
        return (asyncio.get_running_loop().time() + total, "timeout", total)

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
        idle: Deadline = (asyncio.get_running_loop().time() + self._idle, "idle_timeout", self._idle)
        return min(idle, self._total)

    @staticmethod
    def expired(deadline: Deadline) -> TransportTimeout:
        _, name, seconds = deadline
        what = "the request did not complete" if name == "timeout" else "no data from the server"
        return TransportTimeout(f"{what} within {name}={seconds:g}s", deadline=name, seconds=seconds)


class _CancelAt:
    """``asyncio.timeout_at`` for Python 3.10: cancel the task at ``when``, raise ``TimeoutError``."""

    __slots__ = ("_expired", "_handle", "_task", "_when")

    def __init__(self, when: float) -> None:
        self._when = when
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_at(self._when, self._expire)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and et is asyncio.CancelledError:
            raise asyncio.TimeoutError


def timeout_at(when: float) -> AbstractAsyncContextManager[None]:
    """Cancel the block at loop time ``when``; it then raises :class:`asyncio.TimeoutError`."""
    if sys.version_info >= (3, 11):
        return asyncio.timeout_at(when)
    return _CancelAt(when)  # pragma: no cover - Python 3.10
