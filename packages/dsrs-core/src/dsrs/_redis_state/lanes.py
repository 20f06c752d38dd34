"""Lane health shared through Redis: one worker's rate limit cools the lane for every worker.

:class:`RedisLaneState` is a :class:`dsrs._lanestate.LaneState` for :class:`dsrs.LaneMux`. Per lane it
keeps a status key (``cooling``/``exhausted``/``disabled`` with its reason) whose millisecond expiry
(``PX``) is the cooldown, so it ends by itself on the server's clock; and a failure-streak counter
incremented atomically. A shorter ``retry_after`` never shortens a cooldown already running, and a
cooldown never downgrades an exhausted or disabled lane.

While Redis answers, its view is the truth (a reset by any worker is seen by all). Every change
is also kept in this process, so while Redis is lost the lane health goes on per-process; what was
learnt meanwhile is written to Redis when it is back. Reading a lane's health costs one round trip.
"""

from __future__ import annotations

import contextvars
import time

from dsrs._lanestate import InProcessLaneState, LaneHealth, LaneState, LaneStatus
from dsrs._redis_state._link import REDIS_ERRORS, RedisLink
from dsrs._redis_state._scripts import LANE_SET, Script

__all__ = ["RedisLaneState", "current_lane"]

_SET = Script(LANE_SET)
#: A failure streak nobody adds to for this long is forgotten.
_STREAK_TTL_S = 600

#: The lane a LaneMux is trying in this task (set when it reads the lane's health just before the
#: call), so the usage ledger can attribute calls whose response does not name a lane yet.
_current_lane: contextvars.ContextVar[str | None] = contextvars.ContextVar("dsrs_redis_lane", default=None)


def current_lane() -> str | None:
    """The lane the LaneMux of this task is calling, if any."""
    return _current_lane.get()


class RedisLaneState(LaneState):
    """Lane health shared by every process in the namespace (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.local = InProcessLaneState()
        # Lanes whose shared failure streak was last seen non-zero: a success must reset it.
        self._streaks_seen: set[str] = set()
        # Statuses set while Redis was lost, written to it when it is back.
        self._unsynced: set[str] = set()

    def _status_key(self, lane: str) -> str:
        return self.link.key("lane", lane, "status")

    def _streak_key(self, lane: str) -> str:
        return self.link.key("lane", lane, "failures")

    async def health(self, lane: str) -> LaneHealth:
        _current_lane.set(lane)
        local = self.local.health_sync(lane)
        if not self.link.should_try():
            return local
        try:
            if self._unsynced:
                await self._push_unsynced()
            pipe = self.link.client().pipeline(transaction=False)
            pipe.get(self._status_key(lane))
            pipe.pttl(self._status_key(lane))
            pipe.get(self._streak_key(lane))
            value, pttl, streak_raw = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.link.mark_down("lane health", exc)
            return local
        self.link.mark_up()
        streak = int(streak_raw or 0)
        if streak:
            self._streaks_seen.add(lane)
        else:
            self._streaks_seen.discard(lane)
        shared = LaneHealth(consecutive_failures=streak)
        if value is not None:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            status, _, reason = text.partition("\t")
            if status in ("cooling", "exhausted", "disabled"):
                until = time.time() + pttl / 1000 if pttl is not None and pttl > 0 else None
                shared = LaneHealth(status, until, reason, streak)  # type: ignore[arg-type]
        return shared

    async def set_status(self, lane: str, status: LaneStatus, *, seconds: float | None, reason: str) -> None:
        await self.local.set_status(lane, status, seconds=seconds, reason=reason)
        if status == "ok":
            await self.reset(lane)
            return
        if not self.link.should_try():
            self._unsynced.add(lane)
            return
        try:
            await self._write(lane, status, seconds, reason)
        except REDIS_ERRORS as exc:
            self._unsynced.add(lane)
            self.link.mark_down("lane status", exc)
        else:
            self.link.mark_up()

    async def _write(self, lane: str, status: LaneStatus, seconds: float | None, reason: str) -> None:
        ms = "" if seconds is None else max(1, int(seconds * 1000))
        await _SET.run(self.link.client(), [self._status_key(lane)], [status, reason.replace("\t", " "), ms])

    async def _push_unsynced(self) -> None:
        lanes, self._unsynced = self._unsynced, set()
        try:
            for lane in sorted(lanes):
                h = self.local.health_sync(lane)
                if h.status != "ok":
                    seconds = None if h.until is None else h.until - time.time()
                    if seconds is None or seconds > 0:
                        await self._write(lane, h.status, seconds, h.reason)
        except BaseException:
            self._unsynced |= lanes
            raise

    async def record_success(self, lane: str) -> None:
        await self.local.record_success(lane)
        if lane in self._streaks_seen and self.link.should_try():
            self._streaks_seen.discard(lane)
            try:
                await self.link.client().delete(self._streak_key(lane))
            except REDIS_ERRORS as exc:
                self.link.mark_down("lane success", exc)
            else:
                self.link.mark_up()

    async def record_failure(self, lane: str) -> int:
        local = await self.local.record_failure(lane)
        if not self.link.should_try():
            return local
        try:
            pipe = self.link.client().pipeline(transaction=True)
            pipe.incr(self._streak_key(lane))
            pipe.expire(self._streak_key(lane), _STREAK_TTL_S)
            shared, _ = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.link.mark_down("lane failure", exc)
            return local
        self.link.mark_up()
        self._streaks_seen.add(lane)
        return max(int(shared), local)

    async def reset(self, lane: str) -> None:
        await self.local.reset(lane)
        self._streaks_seen.discard(lane)
        if not self.link.should_try():
            return
        try:
            await self.link.client().delete(self._status_key(lane), self._streak_key(lane))
        except REDIS_ERRORS as exc:
            self.link.mark_down("lane reset", exc)
        else:
            self.link.mark_up()
