"""Lane health shared through Redis: one worker's rate limit cools the lane for every worker.

A cooldown is a key with a millisecond expiry (``PX``): it ends by itself, on the server's clock,
and a shorter ``retry_after`` never shortens a longer cooldown already running. Lanes can also be
marked ``exhausted`` (quota spent) or ``disabled`` (bad credentials), optionally for a while.

Every change is kept in this process too, so while Redis is lost the lane health goes on
per-process, and what this process learnt still counts when Redis comes back (the stricter of
the shared and the local view wins).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dsrs.redis_state._link import REDIS_ERRORS, RedisLink
from dsrs.redis_state._scripts import LANE_COOL, Script

__all__ = ["LaneHealth", "LaneState", "RedisLaneHealth"]

LaneState = Literal["ok", "cooling", "exhausted", "disabled"]
_COOL = Script(LANE_COOL)


@dataclass(frozen=True)
class LaneHealth:
    """What is known about one lane right now."""

    lane: str
    state: LaneState = "ok"
    #: Seconds until the cooldown (or a timed exhausted/disabled mark) ends; 0 when none.
    retry_in: float = 0.0
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.state == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"lane": self.lane, "state": self.state, "retry_in_s": round(self.retry_in, 3), "reason": self.reason}


_RANK = {"ok": 0, "cooling": 1, "exhausted": 2, "disabled": 3}


def _stricter(a: LaneHealth, b: LaneHealth) -> LaneHealth:
    if _RANK[a.state] != _RANK[b.state]:
        return a if _RANK[a.state] > _RANK[b.state] else b
    return a if a.retry_in >= b.retry_in else b


class RedisLaneHealth:
    """Cooldowns and exhausted/disabled marks per lane, shared by every process in the namespace."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._lock = threading.Lock()
        # lane -> (state, monotonic deadline or None for no end, reason)
        self._local: dict[str, tuple[LaneState, float | None, str | None]] = {}

    def _cool_key(self, lane: str) -> str:
        return self.link.key("lane", lane, "cool")

    def _state_key(self, lane: str) -> str:
        return self.link.key("lane", lane, "state")

    # --- changes -----------------------------------------------------------------------------

    async def cool_down(self, lane: str, seconds: float, reason: str = "rate limited") -> None:
        """Keep every worker off ``lane`` for ``seconds`` (a longer running cooldown is kept)."""
        if seconds <= 0:
            return
        self._set_local(lane, "cooling", seconds, reason)
        if self.link.should_try():
            try:
                await _COOL.run(self.link.client(), [self._cool_key(lane)], [max(1, int(seconds * 1000)), reason])
            except REDIS_ERRORS as exc:
                self.link.mark_down("lane cooldown", exc)
            else:
                self.link.mark_up()

    async def mark(
        self, lane: str, state: Literal["exhausted", "disabled"], *, seconds: float | None = None, reason: str = ""
    ) -> None:
        """Mark ``lane`` exhausted (quota) or disabled (credentials), for ``seconds`` or until cleared."""
        self._set_local(lane, state, seconds, reason or state)
        if self.link.should_try():
            value = f"{state}\t{reason or state}"
            try:
                client = self.link.client()
                if seconds is not None and seconds > 0:
                    await client.set(self._state_key(lane), value, px=max(1, int(seconds * 1000)))
                else:
                    await client.set(self._state_key(lane), value)
            except REDIS_ERRORS as exc:
                self.link.mark_down("lane mark", exc)
            else:
                self.link.mark_up()

    async def clear(self, lane: str) -> None:
        """Forget cooldown and marks of ``lane`` (shared and local)."""
        with self._lock:
            self._local.pop(lane, None)
        if self.link.should_try():
            try:
                await self.link.client().delete(self._cool_key(lane), self._state_key(lane))
            except REDIS_ERRORS as exc:
                self.link.mark_down("lane clear", exc)
            else:
                self.link.mark_up()

    def _set_local(self, lane: str, state: LaneState, seconds: float | None, reason: str | None) -> None:
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            current = self._local.get(lane)
            longer_running = (
                current is not None
                and state == current[0] == "cooling"
                and current[1] is not None
                and deadline is not None
                and current[1] > deadline
            )
            if longer_running:
                return
            self._local[lane] = (state, deadline, reason)

    # --- reading -------------------------------------------------------------------------------

    def local_health(self, lane: str) -> LaneHealth:
        """What this process alone knows about ``lane``."""
        now = time.monotonic()
        with self._lock:
            entry = self._local.get(lane)
            if entry is None:
                return LaneHealth(lane)
            state, deadline, reason = entry
            if deadline is not None and deadline <= now:
                del self._local[lane]
                return LaneHealth(lane)
        return LaneHealth(lane, state, 0.0 if deadline is None else deadline - now, reason)

    async def health(self, lanes: Sequence[str]) -> dict[str, LaneHealth]:
        """Health of each lane (one round trip for all of them); the stricter view wins."""
        local = {lane: self.local_health(lane) for lane in lanes}
        if not lanes or not self.link.should_try():
            return local
        try:
            pipe = self.link.client().pipeline(transaction=False)
            for lane in lanes:
                pipe.pttl(self._cool_key(lane))
                pipe.get(self._cool_key(lane))
                pipe.pttl(self._state_key(lane))
                pipe.get(self._state_key(lane))
            replies = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.link.mark_down("lane health", exc)
            return local
        self.link.mark_up()
        out = {}
        for i, lane in enumerate(lanes):
            cool_ms, cool_reason, state_ms, state_value = replies[4 * i : 4 * i + 4]
            shared = LaneHealth(lane)
            if state_value is not None:
                text = state_value.decode("utf-8", "replace") if isinstance(state_value, bytes) else str(state_value)
                kind, _, reason = text.partition("\t")
                if kind in ("exhausted", "disabled"):
                    retry_in = state_ms / 1000 if state_ms and state_ms > 0 else 0.0
                    shared = LaneHealth(lane, kind, retry_in, reason or None)  # type: ignore[arg-type]
            if shared.state == "ok" and cool_reason is not None and cool_ms and cool_ms > 0:
                reason = cool_reason.decode("utf-8", "replace") if isinstance(cool_reason, bytes) else str(cool_reason)
                shared = LaneHealth(lane, "cooling", cool_ms / 1000, reason)
            out[lane] = _stricter(shared, local[lane])
        return out

    async def available(self, lanes: Sequence[str]) -> list[str]:
        """The lanes of ``lanes`` (order kept) that no worker has cooled, exhausted or disabled."""
        health = await self.health(lanes)
        return [lane for lane in lanes if health[lane].available]
