"""LaneMux policies: retry on the same lane, failover to the next, cooldowns — and ``decide``.

Pure data plus one pure function, so the mux's behaviour on each error class reads in one place.
A plain :class:`~dsrs.LM` uses :class:`RetryPolicy` too (its ``retries=``); lanes inside a
LaneMux are retried only by the mux's policy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from dsrs import errors

__all__ = ["Action", "CooldownPolicy", "FailoverPolicy", "LaneEffect", "RetryPolicy", "decide"]

Action = Literal["raise", "retry", "next"]
LaneEffect = Literal["none", "cool", "exhaust", "disable"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of retryable failures on the *same* lane, before failing over.

    ``max_attempts`` counts the first try (1 = no retry). Delay before retry ``n`` (1-based) is
    ``min(max_delay, base_delay * multiplier ** (n - 1))``, with "equal jitter" (a random value
    between half and all of it) so that many clients do not retry in lockstep. A server's
    ``retry_after`` longer than ``max_delay`` means: do not wait here, fail over.
    """

    max_attempts: int = 3
    base_delay: float = 0.05
    multiplier: float = 2.0
    max_delay: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def delay(self, retry_number: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1-based), or ``None``: do not retry."""
        if retry_number >= self.max_attempts:
            return None
        if retry_after is not None and retry_after > self.max_delay:
            return None
        d = min(self.max_delay, self.base_delay * self.multiplier ** (retry_number - 1))
        if self.jitter:
            d = d / 2 + random.uniform(0, d / 2)
        return max(d, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """Moving to the next lane. ``enabled=False`` keeps each call on its first available lane.

    ``no_failover`` are the error classes raised at once (another lane would refuse the same
    request); ``max_lanes`` caps how many lanes one call may try. ``wait_for_cooldown`` (seconds,
    default 0 = never): when every lane is cooling down and one is back within this time, the call
    sleeps until then and tries again instead of failing (useful for a single rate-limited lane).
    """

    enabled: bool = True
    no_failover: tuple[type[errors.LMError], ...] = (errors.InvalidRequestError, errors.ContentFilterError)
    max_lanes: int | None = None
    wait_for_cooldown: float = 0.0


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """How long lanes rest after failures (seconds; ``None`` = until ``reset_lane``)."""

    rate_limit_default: float = 10.0
    max_cooldown: float = 600.0
    quota_cooldown: float | None = None
    failure_threshold: int = 3
    failure_cooldown: float = 15.0


def decide(exc: errors.LMError, failover: FailoverPolicy) -> tuple[Action, LaneEffect]:
    """What to do after ``exc`` on a lane: raise it, retry the lane, or go to the next lane."""
    if isinstance(exc, errors.RateLimitError):
        return "next", "cool"
    if isinstance(exc, errors.QuotaExceededError):
        return "next", "exhaust"
    if isinstance(exc, (errors.AuthenticationError, errors.PermissionDeniedError, errors.UnknownModelError)):
        return "next", "disable"
    if isinstance(exc, failover.no_failover):
        return "raise", "none"
    if exc.retryable and getattr(exc, "retry_same_lane", True):
        return "retry", "none"
    return "next", "none"
