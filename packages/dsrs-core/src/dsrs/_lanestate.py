"""Lane health for :class:`dsrs.LaneMux`: cooldowns, exhausted quotas, disabled lanes, failure streaks.

:class:`LaneState` is the interface; :class:`InProcessLaneState` the default. A shared
implementation (e.g. Redis, so that several processes stop hammering a rate-limited lane together)
subclasses :class:`LaneState`: keep per lane a status, an ``until`` wall-clock time (``time.time()``,
comparable across machines) and a consecutive-failure counter, and make ``record_failure`` an atomic
increment. Every method is async so such a store can do I/O.
"""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass
from typing import Literal

from dsrs import _runtime

__all__ = ["InProcessLaneState", "LaneHealth", "LaneState", "LaneStatus"]

LaneStatus = Literal["ok", "cooling", "exhausted", "disabled"]


@dataclass(frozen=True, slots=True)
class LaneHealth:
    """A lane's condition. ``until`` (wall clock) is when a cooldown or exhaustion ends (``None``: never)."""

    status: LaneStatus = "ok"
    until: float | None = None
    reason: str = ""
    consecutive_failures: int = 0

    @property
    def available(self) -> bool:
        return self.status == "ok"

    def describe(self, now: float | None = None) -> str:
        if self.status == "ok":
            return "ok"
        text = {"cooling": "cooling down", "exhausted": "quota exhausted", "disabled": "disabled"}[self.status]
        if self.until is not None:
            left = max(0.0, self.until - (time.time() if now is None else now))
            text += f" for {left:.1f}s more"
        return f"{text} ({self.reason})" if self.reason else text


_OK = LaneHealth()


class LaneState(abc.ABC):
    """Where a LaneMux keeps the health of its lanes (see the module docstring)."""

    @abc.abstractmethod
    async def health(self, lane: str) -> LaneHealth:
        """The lane's current health; an expired cooldown or exhaustion reads as ``ok``."""

    @abc.abstractmethod
    async def set_status(self, lane: str, status: LaneStatus, *, seconds: float | None, reason: str) -> None:
        """Put the lane in ``status`` for ``seconds`` (``None``: until :meth:`reset`)."""

    @abc.abstractmethod
    async def record_success(self, lane: str) -> None:
        """A call succeeded: the failure streak ends."""

    @abc.abstractmethod
    async def record_failure(self, lane: str) -> int:
        """A call failed with a retryable error: increment and return the failure streak."""

    @abc.abstractmethod
    async def reset(self, lane: str) -> None:
        """Back to ``ok`` with no failure streak."""


class InProcessLaneState(LaneState):
    """Lane health in a dict, shared by the tasks and threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._health: dict[str, LaneHealth] = {}
        _runtime.on_fork(self)

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # a lock held by another thread at fork time stays held

    def health_sync(self, lane: str) -> LaneHealth:
        h = self._health.get(lane)
        if h is None:
            return _OK
        if h.status != "ok" and h.until is not None and time.time() >= h.until:
            return LaneHealth(consecutive_failures=h.consecutive_failures)
        return h

    async def health(self, lane: str) -> LaneHealth:
        return self.health_sync(lane)

    async def set_status(self, lane: str, status: LaneStatus, *, seconds: float | None, reason: str) -> None:
        with self._lock:
            old = self._health.get(lane, _OK)
            until = None if seconds is None else time.time() + max(0.0, seconds)
            self._health[lane] = LaneHealth(status, until, reason, old.consecutive_failures)

    async def record_success(self, lane: str) -> None:
        h = self._health.get(lane)
        if h is not None and (h.consecutive_failures or h.status != "ok"):
            with self._lock:
                current = self.health_sync(lane)
                if current.status == "ok":
                    self._health.pop(lane, None)
                else:
                    self._health[lane] = LaneHealth(current.status, current.until, current.reason, 0)

    async def record_failure(self, lane: str) -> int:
        with self._lock:
            h = self.health_sync(lane)
            n = h.consecutive_failures + 1
            self._health[lane] = LaneHealth(h.status, h.until, h.reason, n)
            return n

    async def reset(self, lane: str) -> None:
        with self._lock:
            self._health.pop(lane, None)
