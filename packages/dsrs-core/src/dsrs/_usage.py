"""Token and cost accounting: :class:`LmUsage`, :class:`Cost` and the USD→msats rate.

Unknown cost is ``None``, never a silent 0. A fresh ``LmUsage()`` is the neutral element of
``+`` (nothing happened, nothing spent), so ``sum(usages)`` and ``total = total + u`` work; adding a
usage whose cost is unknown makes the total's cost unknown too, because a total that quietly
leaves out a call is a wrong total.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

from dsrs._frozen import fast_init

__all__ = [
    "DEFAULT_MSATS_PER_USD",
    "Cost",
    "LmUsage",
    "UsageRecord",
    "msats_per_usd",
    "set_msats_per_usd",
    "usd_to_msats",
]

#: Default exchange rate: 1 USD = 1,000,000 msats (1,000 sats), i.e. BTC at 100,000 USD.
#: Override with the ``DSRS_MSATS_PER_USD`` environment variable or :func:`set_msats_per_usd`.
DEFAULT_MSATS_PER_USD = 1_000_000.0
_rate_override: float | None = None


def msats_per_usd() -> float:
    """The USD→msats rate in force: :func:`set_msats_per_usd`, else ``DSRS_MSATS_PER_USD``, else the default."""
    if _rate_override is not None:
        return _rate_override
    env = os.environ.get("DSRS_MSATS_PER_USD")
    if env:
        try:
            rate = float(env)
        except ValueError:
            raise ValueError(f"DSRS_MSATS_PER_USD must be a number, got {env!r}") from None
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"DSRS_MSATS_PER_USD must be positive, got {env!r}")
        return rate
    return DEFAULT_MSATS_PER_USD


def set_msats_per_usd(rate: float | None) -> None:
    """Set the USD→msats rate for this process (``None`` goes back to env/default)."""
    global _rate_override
    if rate is not None and (rate <= 0 or not math.isfinite(rate)):
        raise ValueError(f"rate must be positive, got {rate!r}")
    _rate_override = rate


def usd_to_msats(usd: float) -> int:
    """Convert USD to msats at the current rate, rounding *up* (never under-report a spend)."""
    return math.ceil(usd * msats_per_usd() - 1e-9)


@fast_init
@dataclass(frozen=True, slots=True)
class Cost:
    """What a call cost. A pricing plugin returns this from ``dsrs_cost``; either side may be missing."""

    usd: float | None = None
    msats: int | None = None

    def resolved(self) -> Cost:
        """Fill the missing side from the other one with the configured rate."""
        if self.msats is None and self.usd is not None:
            return Cost(self.usd, usd_to_msats(self.usd))
        if self.usd is None and self.msats is not None:
            return Cost(self.msats / msats_per_usd(), self.msats)
        return self


def _merge_detail(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Numbers add up (``bool`` is not a number here); other values take the right-hand side."""
    out = dict(a)
    for k, v in b.items():
        old = out.get(k)
        if (
            isinstance(v, (int, float))
            and isinstance(old, (int, float))
            and not isinstance(v, bool)
            and not isinstance(old, bool)
        ):
            out[k] = old + v
        else:
            out[k] = v
    return out


def _add_opt(a: float | None, b: float | None) -> Any:
    return None if a is None or b is None else a + b


@fast_init
@dataclass(frozen=True, slots=True)
class LmUsage:
    """Tokens and cost of one call, or of many merged with ``+``.

    ``cached_tokens`` (prompt tokens read from the provider's prompt cache),
    ``cache_write_tokens`` (prompt tokens written to it, e.g. Anthropic's
    ``cache_creation_input_tokens``) and ``reasoning_tokens`` are *included* in ``prompt_tokens`` and
    ``completion_tokens`` respectively (as the OpenAI wire reports them): a provider whose wire counts
    them apart adds them in. ``detail`` holds provider-specific figures; ``+`` adds its numbers and
    keeps the other values of the right-hand side.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cost_msats: int | None = 0
    cost_usd: float | None = 0.0
    cache_hit: bool = False
    calls: int = 0
    detail: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_tokens(
        cls,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        *,
        total_tokens: int | None = None,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_tokens: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> LmUsage:
        """Usage of one call as read off the wire, cost not yet known (``None``)."""
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens if total_tokens is None else total_tokens,
            cached_tokens=cached_tokens,
            reasoning_tokens=reasoning_tokens,
            cache_write_tokens=cache_write_tokens,
            cost_msats=None,
            cost_usd=None,
            calls=1,
            detail=dict(detail or {}),
        )

    def with_cost(self, cost: Cost | None) -> LmUsage:
        if cost is not None:
            cost = cost.resolved()
        # A direct constructor call, not dataclasses.replace: this runs on every priced call, and
        # replace's generic field walk costs several times more.
        return LmUsage(
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
            self.cached_tokens,
            self.reasoning_tokens,
            self.cache_write_tokens,
            cost.msats if cost is not None else None,
            cost.usd if cost is not None else None,
            self.cache_hit,
            self.calls,
            self.detail,
        )

    def as_cache_hit(self) -> LmUsage:
        """The usage reported for a cache hit: same tokens, marked, and nothing new spent."""
        return replace(self, cache_hit=True, cost_msats=0, cost_usd=0.0)

    def __add__(self, other: object) -> LmUsage:
        if not isinstance(other, LmUsage):
            return NotImplemented
        detail = _merge_detail(self.detail, other.detail) if (self.detail or other.detail) else {}
        return LmUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_msats=_add_opt(self.cost_msats, other.cost_msats),
            cost_usd=_add_opt(self.cost_usd, other.cost_usd),
            cache_hit=self.cache_hit and other.cache_hit,
            calls=self.calls + other.calls,
            detail=detail,
        )

    def __radd__(self, other: object) -> LmUsage:
        if other == 0:  # sum() starts from 0
            return self
        if isinstance(other, LmUsage):
            return other.__add__(self)
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_msats": self.cost_msats,
            "cost_usd": self.cost_usd,
            "cache_hit": self.cache_hit,
            "calls": self.calls,
            "detail": dict(self.detail),
        }


@fast_init
@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One finished call attempt, as sent to the ``dsrs_usage_recorded`` hook.

    Sent for answers and for failures alike: ``error`` is the class name of the
    :class:`~dsrs.errors.LMError` a failed attempt raised (``None`` on success; ``usage`` is then
    empty). ``request_id`` is the same for every attempt of one call (``attempt`` counts from 1
    across retries and lanes); ``lane`` names the LaneMux lane, if any. ``request`` and ``response``
    are the :class:`~dsrs.types.LMRequest` and :class:`~dsrs.types.LMResponse` themselves, for sinks
    that log content (they hold no secrets: keys never enter a request).
    """

    provider: str
    model: str
    usage: LmUsage
    lane: str | None = None
    latency_s: float | None = None
    timestamp: float = 0.0
    request_id: str = ""
    attempt: int = 1
    error: str | None = None
    request: Any = field(default=None, repr=False, compare=False)
    response: Any = field(default=None, repr=False, compare=False)
