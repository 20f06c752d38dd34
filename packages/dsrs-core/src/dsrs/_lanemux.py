"""``dsrs.LaneMux``: several LMs behind one, with routing, retries, failover, cooldowns and budgets.

::

    mux = (
        dsrs.LaneMux(budget_msats=50_000)
        .add_lane("premium", dsrs.LM("gpt-4o"), tier="premium", budget_msats=40_000)
        .add_lane("fast", dsrs.LM("groq/llama-3.1-8b-instant"))
        .add_lane("local", dsrs.LM("ollama/llama3.2"))
    )
    mux = await dsrs.LaneMux.auto_detect(timeout=2)   # or: every installed and reachable provider
    dsrs.configure(mux)                                # usable wherever an LM is
    mux.call("Hi").lane                                # which lane answered

Routing: lanes are tried in the order they were added (``auto_detect`` adds them premium → balanced
→ local → swarm); a lane that is cooling down, exhausted or disabled is skipped. What happens on a
failure depends only on the error's class, through three separate mechanisms:

* **retry** (:class:`RetryPolicy`) — ``ProviderUnavailableError`` (5xx, connection), ``LMTimeoutError``
  and ``ResponseParseError`` are retried on the same lane with exponential backoff and jitter;
* **failover** (:class:`FailoverPolicy`) — then, or at once for ``RateLimitError``,
  ``QuotaExceededError``, ``AuthenticationError``/``PermissionDeniedError`` and budget refusals, the
  next lane is tried; ``InvalidRequestError`` (incl. ``ContextWindowExceededError``) and
  ``ContentFilterError`` are raised as they are, since another lane would refuse them too;
* **cooldown** (:class:`CooldownPolicy`) — a rate-limited lane rests for ``retry_after`` (or a
  default), a quota-exhausted lane rests for ``quota_cooldown`` (default: until :meth:`LaneMux.reset_lane`),
  a lane whose key is rejected is disabled, and a lane failing ``failure_threshold`` times in a row
  rests for ``failure_cooldown``.

When no lane can answer, :class:`~dsrs.errors.AllLanesFailedError` says what each lane answered.

Budgets (msats) per lane and for the whole mux: before a call, an upper bound of its cost (the
price, via the ``dsrs_cost`` hook, of an upper bound of the prompt tokens plus ``max_tokens``; or a
configured ``reserve_msats`` where the price is unknown) is reserved on the lane's and the global
budget atomically; after the call the reservation is settled to the actual cost. A call that does not
fit raises :class:`~dsrs.errors.BudgetExceededError` before anything is spent (or moves to a lane
that fits). Lane health and budgets live behind :class:`dsrs._lanestate.LaneState` and
:class:`dsrs._budget.BudgetStore`, so they can be shared (e.g. Redis) instead of in-process.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from dsrs import _portal, errors
from dsrs._budget import BudgetStatus, BudgetStore, InProcessBudgetStore, Reservation
from dsrs._lanestate import InProcessLaneState, LaneHealth, LaneState
from dsrs._lm import LM, LMStream
from dsrs._provider import TIERS, ProbeResult, ProviderSpec, Tier
from dsrs._usage import LmUsage
from dsrs.types import LMRequest, LMResponse, MessagesInput

__all__ = [
    "CooldownPolicy",
    "FailoverPolicy",
    "Lane",
    "LaneMux",
    "MuxStream",
    "ProbeReport",
    "RetryPolicy",
    "UnknownLaneError",
]

T = TypeVar("T")
Action = Literal["raise", "retry", "next"]
LaneEffect = Literal["none", "cool", "exhaust", "disable"]


class UnknownLaneError(errors.LMError, LookupError):
    """No lane (and no tier) of that name in this LaneMux."""


#: Call options that override the LM's own settings rather than becoming provider options.
REQUEST_FIELDS = frozenset({"temperature", "max_tokens", "seed", "stop"})


def build_request(lm: LM, messages: MessagesInput, kwargs: dict[str, Any]) -> LMRequest:
    """``lm.build_request`` where ``temperature``/``max_tokens``/``seed``/``stop`` in ``kwargs``
    override the LM's settings for this call (other keywords are provider options)."""
    if REQUEST_FIELDS.isdisjoint(kwargs):
        return lm.build_request(messages, **kwargs)
    overrides = {k: v for k, v in kwargs.items() if k in REQUEST_FIELDS}
    rest = {k: v for k, v in kwargs.items() if k not in REQUEST_FIELDS}
    if isinstance(overrides.get("stop"), str):
        overrides["stop"] = (overrides["stop"],)
    elif overrides.get("stop") is not None:
        overrides["stop"] = tuple(overrides["stop"])
    return replace(lm.build_request(messages, **rest), **overrides)


# --- policies ------------------------------------------------------------------------------------


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


# --- lanes and reports ---------------------------------------------------------------------------


@dataclass(slots=True)
class Lane:
    """One named route: an LM with a tier, an optional budget and a per-call reservation."""

    name: str
    lm: LM
    tier: Tier | None = None
    budget_msats: int | None = None
    reserve_msats: int | None = None
    _supports_rf: bool | None = field(default=None, repr=False)

    @property
    def supports_response_format(self) -> bool:
        if self._supports_rf is None:
            try:
                self._supports_rf = bool(self.lm.resolved.spec.load().supports_response_format)
            except Exception:
                self._supports_rf = False
        return self._supports_rf


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What ``auto_detect`` found about one provider."""

    provider: str
    tier: Tier
    distribution: str | None
    result: ProbeResult | None
    error: str | None
    elapsed_ms: float
    lane: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"unreachable: {self.error}"
        r = self.result
        assert r is not None
        if not r.configured:
            return f"not configured: {r.detail}"
        if r.reachable is False:
            return f"configured, not reachable: {r.detail}"
        where = f"lane {self.lane!r}" if self.lane else "no lane"
        latency = f", {r.latency_ms:.0f} ms" if r.latency_ms is not None else ""
        checked = "" if r.reachable else " (reachability not checked)"
        return f"{where}: {r.detail}{checked}{latency}"


# --- the mux -------------------------------------------------------------------------------------


class LaneMux:
    """Several LMs behind one interface (``acall``/``call``/``astream``/``stream``), see the module doc."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        failover: FailoverPolicy | None = None,
        cooldown: CooldownPolicy | None = None,
        budget_msats: int | None = None,
        reserve_msats: int | None = None,
        default_max_tokens: int = 4096,
        state: LaneState | None = None,
        budgets: BudgetStore | None = None,
        name: str = "mux",
    ) -> None:
        if budget_msats is not None and budget_msats < 0:
            raise ValueError(f"budget_msats must be >= 0, got {budget_msats}")
        self.retry = retry or RetryPolicy()
        self.failover = failover or FailoverPolicy()
        self.cooldown = cooldown or CooldownPolicy()
        self.budget_msats = budget_msats
        self.reserve_msats = reserve_msats
        self.default_max_tokens = default_max_tokens
        self.state: LaneState = state or InProcessLaneState()
        self.budgets: BudgetStore = budgets or InProcessBudgetStore()
        self.name = name
        self.probes: list[ProbeReport] = []
        self.probe_timeout: float | None = None
        self._lanes: dict[str, Lane] = {}
        self._order: tuple[Lane, ...] = ()
        self._usage_lock = threading.Lock()
        self._usage_by_lane: dict[str, LmUsage] = {}

    # --- configuration ------------------------------------------------------------------------

    def add_lane(
        self,
        name: str,
        lm: LM | str,
        *,
        tier: Tier | None = None,
        budget_msats: int | None = None,
        reserve_msats: int | None = None,
    ) -> LaneMux:
        """Add a lane (tried after the ones already added) and return the mux, for chaining.

        ``budget_msats`` caps what this lane may spend; ``reserve_msats`` is what one call reserves
        when the lane's price is unknown (or to override the computed upper bound).
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"a lane needs a non-empty name, got {name!r}")
        if name in self._lanes:
            raise ValueError(f"lane {name!r} already exists in this LaneMux")
        if isinstance(lm, str):
            lm = LM(lm)
        if not isinstance(lm, LM):
            raise TypeError(f"a lane's model must be a dsrs.LM or a model string, got {type(lm).__name__}")
        if tier is not None and tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
        for value, what in ((budget_msats, "budget_msats"), (reserve_msats, "reserve_msats")):
            if value is not None and value < 0:
                raise ValueError(f"{what} must be >= 0, got {value}")
        lane = Lane(name, lm, tier, budget_msats, reserve_msats)
        self._lanes[name] = lane
        self._order = (*self._order, lane)
        return self

    def with_budget_msats(self, budget_msats: int | None) -> LaneMux:
        """Set the global budget (``None``: unlimited) and return the mux."""
        if budget_msats is not None and budget_msats < 0:
            raise ValueError(f"budget_msats must be >= 0, got {budget_msats}")
        self.budget_msats = budget_msats
        return self

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return self._order

    @property
    def lane_names(self) -> tuple[str, ...]:
        return tuple(lane.name for lane in self._order)

    def lane(self, name: str) -> Lane:
        try:
            return self._lanes[name]
        except KeyError:
            raise self._unknown_lane(name) from None

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"LaneMux({', '.join(f'{lane.name}={lane.lm!r}' for lane in self._order)})"

    def _unknown_lane(self, name: str) -> UnknownLaneError:
        tiers = sorted({lane.tier for lane in self._order if lane.tier})
        return UnknownLaneError(
            f"no lane or tier named {name!r}; lanes: {', '.join(self.lane_names) or '(none)'}"
            + (f"; tiers: {', '.join(tiers)}" if tiers else "")
        )

    def _candidates(self, selector: str | None) -> tuple[Lane, ...]:
        if selector is None:
            lanes = self._order
        elif selector in self._lanes:
            lanes = (self._lanes[selector],)
        else:
            lanes = tuple(lane for lane in self._order if lane.tier == selector)
            if not lanes:
                raise self._unknown_lane(selector)
        if not lanes:
            raise errors.AllLanesFailedError({})
        if self.failover.max_lanes is not None:
            return lanes[: max(1, self.failover.max_lanes)]
        return lanes

    # --- usage and budgets --------------------------------------------------------------------

    @property
    def usage(self) -> LmUsage:
        """Tokens and cost of every call this mux made (all lanes)."""
        with self._usage_lock:
            return sum(self._usage_by_lane.values(), LmUsage())

    @property
    def usage_by_lane(self) -> dict[str, LmUsage]:
        with self._usage_lock:
            return dict(self._usage_by_lane)

    def _add_usage(self, lane: str, usage: LmUsage) -> None:
        with self._usage_lock:
            self._usage_by_lane[lane] = self._usage_by_lane.get(lane, LmUsage()) + usage

    def _budget_scopes(self, lane: Lane) -> dict[str, int | None]:
        return {f"{self.name}:global": self.budget_msats, f"{self.name}:lane:{lane.name}": lane.budget_msats}

    def _budgeted(self, lane: Lane) -> bool:
        return self.budget_msats is not None or lane.budget_msats is not None

    async def abudget_status(self) -> dict[str, BudgetStatus]:
        """Spent/reserved/limit per scope: ``"global"`` and each lane's name.

        Budgets account for the calls made under a limit (a lane's own, or the global one); a lane
        with no budget in a mux with no global budget is not accounted here. ``usage`` counts all.
        """
        out = {"global": await self.budgets.status(f"{self.name}:global", self.budget_msats)}
        for lane in self._order:
            out[lane.name] = await self.budgets.status(f"{self.name}:lane:{lane.name}", lane.budget_msats)
        return out

    def budget_status(self) -> dict[str, BudgetStatus]:
        return _portal.run_sync(self.abudget_status())

    def estimate_msats(self, lane: Lane, request: LMRequest) -> int:
        """The msats one call reserves: an upper bound of its cost (see the module docstring)."""
        if lane.reserve_msats is not None:
            return lane.reserve_msats
        from dsrs.plugins import hooks

        # Byte-level tokenizers never produce more tokens than UTF-8 bytes; add per-message framing.
        prompt = sum(len((m.content or "").encode("utf-8")) + 8 for m in request.messages) + 16
        if request.tools:
            prompt += sum(len(repr(t.to_dict()).encode("utf-8")) for t in request.tools)
        completion = request.max_tokens or self.default_max_tokens
        cost = hooks().cost(f"{request.provider}:{request.model}", LmUsage.from_tokens(prompt, completion))
        msats = cost.resolved().msats if cost is not None else None
        if msats is None:
            if self.reserve_msats is not None:
                return self.reserve_msats
            raise errors.BudgetExceededError(
                f"the price of {request.provider}:{request.model} is unknown, so a budget cannot bound it; "
                f"give the lane (or the LaneMux) reserve_msats=",
                provider=request.provider,
                model=request.model,
            )
        return msats

    async def _reserve(self, lane: Lane, request: LMRequest) -> Reservation | None:
        if not self._budgeted(lane):
            return None
        if lane.lm.cache:
            from dsrs._cache import get_cache

            if await get_cache().aget(request.cache_key()) is not None:
                return None  # a hit costs nothing
        amount = self.estimate_msats(lane, request)
        try:
            return await self.budgets.reserve(self._budget_scopes(lane), amount)
        except errors.BudgetExceededError as exc:
            exc.provider, exc.model = request.provider, request.model
            raise

    async def _settle(self, reservation: Reservation | None, response: LMResponse | None) -> None:
        if reservation is None:
            return
        if response is None or response.usage.cache_hit:
            actual = 0
        elif response.usage.cost_msats is None:
            actual = reservation.amount_msats  # unknown price: charge the bound, never under-count
        else:
            actual = response.usage.cost_msats
        await self.budgets.settle(reservation, actual)

    # --- failure handling ---------------------------------------------------------------------

    def decide(self, exc: errors.LMError) -> tuple[Action, LaneEffect]:
        """What to do after ``exc`` on a lane: raise it, retry the lane, or go to the next lane."""
        if isinstance(exc, errors.RateLimitError):
            return "next", "cool"
        if isinstance(exc, errors.QuotaExceededError):
            return "next", "exhaust"
        if isinstance(exc, (errors.AuthenticationError, errors.PermissionDeniedError, errors.UnknownModelError)):
            return "next", "disable"
        if isinstance(exc, self.failover.no_failover):
            return "raise", "none"
        if exc.retryable and getattr(exc, "retry_same_lane", True):
            return "retry", "none"
        return "next", "none"

    async def _after_failure(self, lane: Lane, exc: errors.LMError, attempt: int) -> float | None:
        """Apply the lane effect of ``exc``; return a delay to retry the lane, or ``None`` to move on.

        Raises ``exc`` when it must not fail over.
        """
        action, effect = self.decide(exc)
        if action == "raise":
            raise exc
        cd = self.cooldown
        if effect == "cool":
            seconds = exc.retry_after if exc.retry_after is not None else cd.rate_limit_default
            await self.state.set_status(
                lane.name, "cooling", seconds=min(seconds, cd.max_cooldown), reason=type(exc).__name__
            )
        elif effect == "exhaust":
            await self.state.set_status(lane.name, "exhausted", seconds=cd.quota_cooldown, reason=str(exc))
        elif effect == "disable":
            await self.state.set_status(lane.name, "disabled", seconds=None, reason=str(exc))
        if action == "retry":
            failures = await self.state.record_failure(lane.name)
            delay = self.retry.delay(attempt, exc.retry_after)
            if delay is not None:
                return delay
            if failures >= cd.failure_threshold:
                await self.state.set_status(
                    lane.name,
                    "cooling",
                    seconds=cd.failure_cooldown,
                    reason=f"{failures} failures in a row, last {type(exc).__name__}",
                )
        return None

    def _all_failed(self, failures: dict[str, errors.LMError | str]) -> errors.LMError:
        values = list(failures.values())
        if not self.failover.enabled and len(values) == 1 and isinstance(values[0], errors.LMError):
            return values[0]  # one lane was allowed: its own error is the answer
        if values and all(isinstance(v, errors.BudgetExceededError) for v in values):
            lines = "; ".join(f"{lane}: {err}" for lane, err in failures.items())
            return errors.BudgetExceededError(f"no lane fits the budget — {lines}")
        return errors.AllLanesFailedError(failures)

    def _lane_kwargs(self, lane: Lane, kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs.get("response_format") is not None and not lane.supports_response_format:
            return {k: v for k, v in kwargs.items() if k != "response_format"}
        return kwargs

    # --- calls --------------------------------------------------------------------------------

    async def _admit(
        self, lane: Lane, messages: MessagesInput, kwargs: dict[str, Any], failures: dict[str, errors.LMError | str]
    ) -> LMRequest | None:
        """The lane's request when the lane is healthy and can build it; else record why in ``failures``."""
        health = await self.state.health(lane.name)
        if not health.available:
            failures[lane.name] = health.describe()
            return None
        try:
            return build_request(lane.lm, messages, self._lane_kwargs(lane, kwargs))
        except errors.LMError as exc:  # e.g. the lane's provider is not installed
            await self._after_failure(lane, exc, 1)
            failures[lane.name] = exc
            return None

    async def _succeeded(self, lane: Lane, reservation: Reservation | None, response: LMResponse) -> None:
        """Settle the spend, count the usage and mark the lane healthy after an answer."""
        await self._settle(reservation, response)
        self._add_usage(lane.name, response.usage)
        await self.state.record_success(lane.name)

    async def _run(
        self,
        messages: MessagesInput,
        kwargs: dict[str, Any],
        selector: str | None,
        parse: Callable[[LMResponse], T] | None,
    ) -> tuple[LMResponse, T | None, LmUsage]:
        spent = LmUsage()
        waited = 0.0
        while True:
            failures: dict[str, errors.LMError | str] = {}
            for lane in self._candidates(selector):
                request = await self._admit(lane, messages, kwargs, failures)
                if request is None:
                    continue
                attempt = 1
                while True:
                    try:
                        reservation = await self._reserve(lane, request)
                    except errors.BudgetExceededError as exc:
                        failures[lane.name] = exc
                        break
                    try:
                        response = await lane.lm.acomplete(request)
                    except errors.LMError as exc:
                        await self._settle(reservation, None)
                        delay = await self._after_failure(lane, exc, attempt)
                        if delay is None:
                            failures[lane.name] = exc
                            break
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                    except BaseException:
                        await self._settle(reservation, None)
                        raise
                    await self._succeeded(lane, reservation, response)
                    spent = spent + response.usage
                    response = replace(response, lane=lane.name)
                    if parse is None:
                        return response, None, spent
                    try:
                        return response, parse(response), spent
                    except errors.LMError as exc:
                        exc.provider = exc.provider or response.provider
                        exc.model = exc.model or response.model
                        delay = await self._after_failure(lane, exc, attempt)
                        if delay is None:
                            failures[lane.name] = exc
                            break
                        await asyncio.sleep(delay)
                        attempt += 1
                if not self.failover.enabled:
                    break
            wait = await self._cooldown_wait(selector, waited)
            if wait is None:
                raise self._all_failed(failures)
            await asyncio.sleep(wait)
            waited += wait

    async def _cooldown_wait(self, selector: str | None, waited: float) -> float | None:
        """When every candidate lane is resting and one comes back within what is left of
        ``FailoverPolicy.wait_for_cooldown``, how long to sleep before trying again."""
        budget = self.failover.wait_for_cooldown - waited
        if budget <= 0:
            return None
        now = time.time()
        soonest: float | None = None
        for lane in self._candidates(selector):
            h = await self.state.health(lane.name)
            if h.available or h.until is None:
                return None  # a lane failed for another reason, or rests until reset: waiting won't help
            left = max(0.0, h.until - now)
            soonest = left if soonest is None else min(soonest, left)
        if soonest is None or soonest > budget:
            return None
        return soonest + 0.001

    async def acall(self, messages: MessagesInput, *, lane: str | None = None, **kwargs: Any) -> LMResponse:
        """Answer on the best available lane (or on ``lane``: a lane name or a tier)."""
        response, _, _ = await self._run(messages, kwargs, lane, None)
        return response

    def call(self, messages: MessagesInput, *, lane: str | None = None, **kwargs: Any) -> LMResponse:
        """Sync twin of :meth:`acall` (works inside a running event loop too)."""
        return _portal.run_sync(self.acall(messages, lane=lane, **kwargs))

    __call__ = call

    async def acall_parsed(
        self,
        messages: MessagesInput,
        parse: Callable[[LMResponse], T],
        *,
        lane: str | None = None,
        **kwargs: Any,
    ) -> tuple[LMResponse, T, LmUsage]:
        """Like :meth:`acall`, with ``parse`` applied to the answer inside the lane loop: a parse
        failure (an ``LMError``, e.g. ``AdapterParseError``) counts as that lane failing. Returns the
        response, the parsed value and the usage of every call made (failed parses included)."""
        response, value, spent = await self._run(messages, kwargs, lane, parse)
        return response, value, spent  # type: ignore[return-value]

    def astream(self, messages: MessagesInput, *, lane: str | None = None, **kwargs: Any) -> MuxStream:
        """``async for delta in mux.astream(prompt)``; then ``.response`` (with ``.lane``)."""
        return MuxStream(self, messages, kwargs, lane)

    def stream(self, messages: MessagesInput, *, lane: str | None = None, **kwargs: Any) -> MuxStream:
        """``for delta in mux.stream(prompt)``: fails over until the first delta, not after."""
        return MuxStream(self, messages, kwargs, lane)

    async def reset_lane(self, name: str) -> None:
        """Clear a lane's cooldown, exhaustion or disabled state."""
        await self.state.reset(self.lane(name).name)

    async def ahealth(self) -> dict[str, LaneHealth]:
        return {lane.name: await self.state.health(lane.name) for lane in self._order}

    async def aclose(self) -> None:
        for lane in self._order:
            await lane.lm.aclose()

    # --- auto-detection -----------------------------------------------------------------------

    @classmethod
    async def auto_detect(
        cls,
        timeout: float = 2.0,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        **mux_options: Any,
    ) -> LaneMux:
        """Probe every registered provider concurrently and build lanes from the usable ones.

        A provider becomes a lane (named after it, with its tier) when its probe says it is
        configured and not unreachable; probes that raise or take longer than ``timeout`` count as
        unreachable. Lanes are ordered premium → balanced → local → swarm, then by priority. The
        whole detection takes about one ``timeout``. ``mux.describe()`` explains every result.
        """
        from dsrs._registry import providers

        wanted = set(include) if include is not None else None
        skipped = set(exclude)
        specs = [s for s in providers() if (wanted is None or s.name in wanted) and s.name not in skipped]
        t0 = time.perf_counter()
        reports = await asyncio.gather(*(_probe(spec, timeout) for spec in specs))
        mux = cls(**mux_options)
        mux.probe_timeout = timeout
        final: list[ProbeReport] = []
        for spec, report in zip(specs, reports, strict=True):
            r = report.result
            if report.error is None and r is not None and r.configured and r.reachable is not False and r.lane:
                model = r.model or spec.default_model
                if model is None:
                    report = replace(report, result=replace(r, detail=f"{r.detail}; no model to use"))
                else:
                    try:
                        mux.add_lane(spec.name, LM(f"{spec.name}:{model}"), tier=spec.tier)
                        report = replace(report, lane=spec.name)
                    except (errors.LMError, ValueError) as exc:
                        report = replace(report, error=f"cannot build a lane: {exc}")
            final.append(report)
        mux.probes = final
        mux._detect_ms = (time.perf_counter() - t0) * 1000
        return mux

    @classmethod
    def auto_detect_sync(
        cls,
        timeout: float = 2.0,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        **mux_options: Any,
    ) -> LaneMux:
        """Sync twin of :meth:`auto_detect`."""
        return _portal.run_sync(cls.auto_detect(timeout, include=include, exclude=exclude, **mux_options))

    _detect_ms: float | None = None

    def describe(self) -> str:
        """Lanes in order with their health and budgets, then what ``auto_detect`` found per provider."""
        lines = [f"LaneMux {self.name!r}: {len(self._order)} lane(s), tried in this order"]
        sync_state = self.state if isinstance(self.state, InProcessLaneState) else None
        for i, lane in enumerate(self._order, 1):
            parts = [f"  {i}. {lane.name}", f"tier={lane.tier or '-'}", f"model={lane.lm.model}"]
            if lane.budget_msats is not None:
                parts.append(f"budget={lane.budget_msats} msats")
            if sync_state is not None:
                parts.append(sync_state.health_sync(lane.name).describe())
            lines.append("  ".join(parts))
        if self.budget_msats is not None:
            lines.append(f"  global budget: {self.budget_msats} msats")
        if self.probes:
            took = f", took {self._detect_ms:.0f} ms" if self._detect_ms is not None else ""
            lines.append(f"Providers probed (timeout {self.probe_timeout:g}s{took}):")
            width = max(len(p.provider) for p in self.probes)
            for p in self.probes:
                dist = f" [{p.distribution}]" if p.distribution else ""
                lines.append(f"  {p.provider:<{width}}  {p.tier:<8}  {p.describe()}{dist}")
        return "\n".join(lines)


async def _probe(spec: ProviderSpec, timeout: float) -> ProbeReport:
    t0 = time.perf_counter()
    result: ProbeResult | None = None
    error: str | None = None
    try:
        provider_cls = spec.load()
        result = await asyncio.wait_for(provider_cls.probe(spec, timeout), timeout)
        if not isinstance(result, ProbeResult):
            error = f"probe returned {type(result).__name__}, not a ProbeResult"
            result = None
    except asyncio.TimeoutError:
        error = f"no answer within {timeout:g}s"
    except Exception as exc:
        error = errors.redact(f"probe failed: {type(exc).__name__}: {exc}") or "probe failed"
    return ProbeReport(spec.name, spec.tier, spec.distribution, result, error, (time.perf_counter() - t0) * 1000)


class MuxStream:
    """A streamed answer from a LaneMux. Fails over until the first delta arrives; ``.response.lane``."""

    def __init__(self, mux: LaneMux, messages: MessagesInput, kwargs: dict[str, Any], selector: str | None) -> None:
        self._mux = mux
        self._messages = messages
        self._kwargs = kwargs
        self._selector = selector
        self.response: LMResponse | None = None
        self.reasoning = ""

    @property
    def usage(self) -> LmUsage | None:
        return self.response.usage if self.response is not None else None

    @property
    def lane(self) -> str | None:
        return self.response.lane if self.response is not None else None

    async def __aiter__(self) -> AsyncIterator[str]:
        mux = self._mux
        waited = 0.0
        while True:
            failures: dict[str, errors.LMError | str] = {}
            for lane in mux._candidates(self._selector):
                request = await mux._admit(lane, self._messages, self._kwargs, failures)
                if request is None:
                    continue
                attempt = 1
                while True:
                    try:
                        reservation = await mux._reserve(lane, request)
                    except errors.BudgetExceededError as exc:
                        failures[lane.name] = exc
                        break
                    stream = LMStream(lane.lm, request)
                    started = False
                    try:
                        async for piece in stream:
                            started = True
                            yield piece
                    except errors.LMError as exc:
                        await mux._settle(reservation, None)
                        if started:
                            raise
                        delay = await mux._after_failure(lane, exc, attempt)
                        if delay is None:
                            failures[lane.name] = exc
                            break
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                    except BaseException:
                        await mux._settle(reservation, None)
                        raise
                    final = stream.response
                    assert final is not None
                    await mux._succeeded(lane, reservation, final)
                    self.reasoning = stream.reasoning
                    self.response = replace(final, lane=lane.name)
                    return
                if not mux.failover.enabled:
                    break
            wait = await mux._cooldown_wait(self._selector, waited)
            if wait is None:
                raise mux._all_failed(failures)
            await asyncio.sleep(wait)
            waited += wait

    def __iter__(self) -> Iterator[str]:
        return _portal.iterate_sync(self.__aiter__())

    def text(self) -> str:
        """Consume the stream (sync) and return the whole text."""
        return "".join(self)
