"""The LaneMux itself: lanes, routing, and the one attempt loop shared by calls and streams."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from dsrs import _otel, _portal, errors
from dsrs._budget import BudgetStatus, BudgetStore, InProcessBudgetStore, Reservation
from dsrs._lanemux import budgeting
from dsrs._lanemux.detect import ProbeReport, detect_lanes
from dsrs._lanemux.policies import CooldownPolicy, FailoverPolicy, RetryPolicy, decide
from dsrs._lanestate import InProcessLaneState, LaneHealth, LaneState
from dsrs._lm import LM, LMStream, new_request_id
from dsrs._provider import TIERS, Tier
from dsrs._usage import LmUsage
from dsrs._validate import InvalidValueError, check_msats
from dsrs.types import LMRequest, LMResponse, MessagesInput
from dsrs.wire._codec import DEFAULT_MAX_TOKENS

__all__ = ["Lane", "LaneMux", "MuxStream", "UnknownLaneError"]

T = TypeVar("T")


class UnknownLaneError(errors.LMError, LookupError):
    """No lane (and no tier) of that name in this LaneMux."""


@dataclass(slots=True)
class Lane:
    """One named route: an LM with a tier, an optional budget and a per-call reservation."""

    name: str
    lm: LM
    tier: Tier | None = None
    budget_msats: int | None = None
    reserve_msats: int | None = None

    @property
    def supports_response_format(self) -> bool:
        return self.lm.supports_response_format


@dataclass(slots=True)
class _Done(Generic[T]):
    """The last item of the attempt loop: the answer, its parsed value, and all usage spent."""

    response: LMResponse
    value: T | None
    spent: LmUsage


class LaneMux:
    """Several LMs behind one interface (``acall``/``call``/``astream``/``stream``); see :mod:`dsrs._lanemux`."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        failover: FailoverPolicy | None = None,
        cooldown: CooldownPolicy | None = None,
        budget_msats: int | None = None,
        reserve_msats: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        state: LaneState | None = None,
        budgets: BudgetStore | None = None,
        name: str = "mux",
        deadline: float | None = None,
    ) -> None:
        budget_msats = check_msats("budget_msats", budget_msats)
        reserve_msats = check_msats("reserve_msats", reserve_msats)
        if not isinstance(default_max_tokens, int) or isinstance(default_max_tokens, bool) or default_max_tokens < 1:
            raise InvalidValueError("default_max_tokens", default_max_tokens, "an int >= 1")
        self.retry = retry or RetryPolicy()
        self.failover = failover or FailoverPolicy()
        self.cooldown = cooldown or CooldownPolicy()
        self.budget_msats = budget_msats
        self.reserve_msats = reserve_msats
        self.default_max_tokens = default_max_tokens
        self.state: LaneState = state or InProcessLaneState()
        self.budgets: BudgetStore = budgets or InProcessBudgetStore()
        self.name = name
        if deadline is not None:
            from dsrs._validate import check_number

            if (check_number("deadline", deadline) or 0) <= 0:
                raise InvalidValueError("deadline", deadline, "a number of seconds > 0")
        #: Seconds one call may take across all its attempts, retries and lanes (``None``: no bound).
        self.deadline = deadline
        self.probes: list[ProbeReport] = []
        self.probe_timeout: float | None = None
        self.detect_ms: float | None = None
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
        budget_msats = check_msats("budget_msats", budget_msats)
        reserve_msats = check_msats("reserve_msats", reserve_msats)
        lane = Lane(name, lm, tier, budget_msats, reserve_msats)
        self._lanes[name] = lane
        self._order = (*self._order, lane)
        return self

    def with_budget_msats(self, budget_msats: int | None) -> LaneMux:
        """Set the global budget (``None``: unlimited) and return the mux."""
        self.budget_msats = check_msats("budget_msats", budget_msats)
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
            before = self._usage_by_lane.get(lane)
            self._usage_by_lane[lane] = usage if before is None else before + usage

    def estimate_msats(self, lane: Lane, request: LMRequest) -> int:
        """The msats one call on ``lane`` reserves (an upper bound of its cost)."""
        return budgeting.estimate_msats(self, lane, request)

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

    # --- failure handling ---------------------------------------------------------------------

    def decide(self, exc: errors.LMError) -> tuple[str, str]:
        """What to do after ``exc`` on a lane: ``(raise|retry|next, lane effect)``."""
        return decide(exc, self.failover)

    async def _after_failure(self, lane: Lane, exc: errors.LMError, attempt: int) -> float | None:
        """Apply the lane effect of ``exc``; return a delay to retry the lane, or ``None`` to move on.

        Raises ``exc`` when it must not fail over.
        """
        action, effect = decide(exc, self.failover)
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

    # --- the attempt loop ---------------------------------------------------------------------

    def _request(self, lane: Lane, messages: MessagesInput, kwargs: dict[str, Any], budgeted: bool) -> LMRequest:
        if kwargs.get("response_format") is not None and not lane.supports_response_format:
            kwargs = {k: v for k, v in kwargs.items() if k != "response_format"}
        request = lane.lm.build_request(messages, **kwargs)
        if budgeted and request.max_tokens is None:
            # Send the cap the reservation assumes, so the provider cannot bill more than was held.
            request = replace(request, max_tokens=self.default_max_tokens)
        return request

    async def _attempts(
        self,
        messages: MessagesInput,
        kwargs: dict[str, Any],
        selector: str | None,
        parse: Callable[[LMResponse], T] | None,
        stream: bool,
    ) -> AsyncGenerator[str | _Done[T], None]:
        """The one loop for calls and streams: lanes in order, retries on a lane, failover, budgets,
        cooldowns. Yields a stream's deltas (a stream never fails over once one was yielded), then a
        :class:`_Done`."""
        spent: LmUsage | None = None  # what the answers taken so far cost (a parse failure can follow one)
        waited = 0.0
        request_id = new_request_id()
        attempt_no = 0
        while True:
            failures: dict[str, errors.LMError | str] = {}
            for lane in self._candidates(selector):
                health = await self.state.health(lane.name)
                if not health.available:
                    failures[lane.name] = health.describe()
                    continue
                budgeted = budgeting.budgeted(self, lane)
                try:
                    request = self._request(lane, messages, kwargs, budgeted)
                except errors.LMError as exc:  # e.g. the lane's provider is not installed
                    await self._after_failure(lane, exc, 1)
                    failures[lane.name] = exc
                    continue
                attempt = 1
                while True:
                    attempt_no += 1
                    # A hit costs nothing: no reservation.
                    hit = (
                        await lane.lm.cached(request, lane=lane.name, request_id=request_id, attempt=attempt_no)
                        if lane.lm.cache
                        else None
                    )
                    reservation: Reservation | None = None
                    if hit is None and budgeted:
                        try:
                            reservation = await budgeting.reserve(self, lane, request)
                        except errors.BudgetExceededError as exc:
                            failures[lane.name] = exc
                            break
                    started = False
                    try:
                        if hit is not None:
                            response = hit
                            if stream and hit.text:
                                started = True
                                yield hit.text
                        elif stream:
                            lm_stream = LMStream(
                                lane.lm,
                                request,
                                read_cache=False,
                                lane=lane.name,
                                request_id=request_id,
                                attempt=attempt_no,
                            )
                            async for piece in lm_stream:
                                started = True
                                yield piece
                            assert lm_stream.response is not None
                            response = lm_stream.response
                        else:
                            response = await lane.lm.acomplete(
                                request,
                                read_cache=False,
                                retry=False,
                                lane=lane.name,
                                request_id=request_id,
                                attempt=attempt_no,
                            )
                    except errors.LMError as exc:
                        await budgeting.settle(self, reservation, None)
                        if started:
                            raise
                        delay = await self._after_failure(lane, exc, attempt)
                        if delay is None:
                            failures[lane.name] = exc
                            break
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                    except BaseException:
                        await budgeting.settle(self, reservation, None)
                        raise
                    if reservation is not None:
                        await budgeting.settle(self, reservation, response)
                    self._add_usage(lane.name, response.usage)
                    await self.state.record_success(lane.name)
                    spent = response.usage if spent is None else spent + response.usage
                    if response.lane != lane.name:  # the LM sets it; an LM subclass may not
                        response = replace(response, lane=lane.name)
                    if parse is None:
                        yield _Done(response, None, spent)
                        return
                    try:
                        value = parse(response)
                    except errors.LMError as exc:  # e.g. AdapterParseError: this lane's answer is unusable
                        exc.provider = exc.provider or response.provider
                        exc.model = exc.model or response.model
                        delay = await self._after_failure(lane, exc, attempt)
                        if delay is None:
                            failures[lane.name] = exc
                            break
                        await asyncio.sleep(delay)
                        attempt += 1
                        continue
                    yield _Done(response, value, spent)
                    return
                if not self.failover.enabled:
                    break
            wait = await self._cooldown_wait(selector, waited)
            if wait is None:
                raise self._all_failed(failures)
            await asyncio.sleep(wait)
            waited += wait

    async def _run(
        self,
        messages: MessagesInput,
        kwargs: dict[str, Any],
        selector: str | None,
        parse: Callable[[LMResponse], T] | None,
    ) -> _Done[T]:
        if _otel.tracer is not None:
            with _otel.mux_call(self.name, selector, stream=False) as span:
                done = await self._bounded(self._first_done(messages, kwargs, selector, parse))
                span.set_attributes({"dsrs.lane": done.response.lane or "", **_otel.response_attributes(done.response)})
                return done
        return await self._bounded(self._first_done(messages, kwargs, selector, parse))

    def _bounded(self, work: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """``work`` within :attr:`deadline` (all attempts together): an ``LMTimeoutError`` after it.
        Without a deadline, ``work`` itself (no coroutine around it on every call)."""
        return work if self.deadline is None else self._within_deadline(work)

    async def _within_deadline(self, work: Coroutine[Any, Any, T]) -> T:
        assert self.deadline is not None
        try:
            return await asyncio.wait_for(work, self.deadline)
        except asyncio.TimeoutError:
            raise self._deadline_passed() from None

    def _deadline_passed(self) -> errors.LMTimeoutError:
        err = errors.LMTimeoutError(f"the LaneMux deadline of {self.deadline:g}s passed (all attempts together)")
        err.retryable = False  # the caller's whole budget of time is spent
        return err

    async def _first_done(
        self,
        messages: MessagesInput,
        kwargs: dict[str, Any],
        selector: str | None,
        parse: Callable[[LMResponse], T] | None,
    ) -> _Done[T]:
        gen = self._attempts(messages, kwargs, selector, parse, stream=False)
        try:
            async for item in gen:
                if isinstance(item, _Done):
                    return item
        finally:
            await gen.aclose()
        raise AssertionError("the attempt loop ended without an answer")  # pragma: no cover

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
        return (await self._run(messages, kwargs, lane, None)).response

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
        """Like :meth:`acall`, with ``parse`` applied to the answer: a parse failure (an ``LMError``,
        e.g. ``AdapterParseError``) counts as that lane failing. Returns the response, the parsed
        value and the usage of every call made (failed parses included)."""
        done = await self._run(messages, kwargs, lane, parse)
        return done.response, done.value, done.spent  # type: ignore[return-value]

    async def abatch(
        self,
        prompts: Sequence[MessagesInput],
        *,
        lane: str | None = None,
        concurrency: int = 16,
        progress: bool = True,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Answer every prompt through the mux, at most ``concurrency`` at a time, in input order;
        when the budget runs out the rest are marked, not lost (see :mod:`dsrs._batch`)."""
        from dsrs._batch import run_batch

        async def one(prompt: MessagesInput) -> LMResponse:
            return await self.acall(prompt, lane=lane, **kwargs)

        return await run_batch(
            prompts,
            one,
            usage_of=lambda r: r.usage,
            concurrency=concurrency,
            progress=progress,
            return_exceptions=return_exceptions,
            description=f"LaneMux {self.name}",
        )

    def batch(self, prompts: Sequence[MessagesInput], **kwargs: Any) -> list[Any]:
        """Sync twin of :meth:`abatch`."""
        return _portal.run_sync(self.abatch(prompts, **kwargs))

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
        """Probe every registered provider concurrently and build lanes from the usable ones
        (premium → balanced → local → swarm, then by priority), in about one ``timeout``.
        ``mux.describe()`` explains every result."""
        return await detect_lanes(cls(**mux_options), timeout, include, exclude)

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
            took = f", took {self.detect_ms:.0f} ms" if self.detect_ms is not None else ""
            lines.append(f"Providers probed (timeout {self.probe_timeout:g}s{took}):")
            width = max(len(p.provider) for p in self.probes)
            for p in self.probes:
                dist = f" [{p.distribution}]" if p.distribution else ""
                lines.append(f"  {p.provider:<{width}}  {p.tier:<8}  {p.describe()}{dist}")
        return "\n".join(lines)


class MuxStream:
    """A streamed answer from a LaneMux. Fails over until the first delta arrives; ``.response.lane``."""

    def __init__(self, mux: LaneMux, messages: MessagesInput, kwargs: dict[str, Any], selector: str | None) -> None:
        self._mux = mux
        self._messages = messages
        self._kwargs = kwargs
        self._selector = selector
        self.response: LMResponse | None = None

    @property
    def usage(self) -> LmUsage | None:
        return self.response.usage if self.response is not None else None

    @property
    def lane(self) -> str | None:
        return self.response.lane if self.response is not None else None

    @property
    def reasoning(self) -> str:
        return (self.response.reasoning or "") if self.response is not None else ""

    async def __aiter__(self) -> AsyncIterator[str]:
        mux = self._mux
        gen: AsyncGenerator[str | _Done[Any], None] = mux._attempts(
            self._messages, self._kwargs, self._selector, None, stream=True
        )
        # Not a current span: a stream is consumed across the caller's own awaits; the lane
        # attempts are linked to it as children explicitly.
        span = _otel.tracer.start_span(f"dsrs.lanemux {mux.name}") if _otel.tracer is not None else None
        try:
            if mux.deadline is not None:
                # The deadline covers the whole stream: every step waits at most what is left.
                end = time.monotonic() + mux.deadline
                while True:
                    try:
                        item = await asyncio.wait_for(gen.__anext__(), max(0.0, end - time.monotonic()))
                    except StopAsyncIteration:
                        break
                    except asyncio.TimeoutError:
                        raise mux._deadline_passed() from None
                    if isinstance(item, _Done):
                        self.response = item.response
                        if span is not None:
                            span.set_attributes(_otel.response_attributes(item.response))
                    else:
                        yield item
            elif span is None:
                async for item in gen:
                    if isinstance(item, _Done):
                        self.response = item.response
                    else:
                        yield item
            else:
                from opentelemetry import context, trace

                token = context.attach(trace.set_span_in_context(span))
                try:
                    async for item in gen:
                        if isinstance(item, _Done):
                            self.response = item.response
                            span.set_attributes(_otel.response_attributes(item.response))
                        else:
                            context.detach(token)
                            try:
                                yield item
                            finally:
                                token = context.attach(trace.set_span_in_context(span))
                finally:
                    context.detach(token)
        except BaseException as exc:
            if span is not None and not isinstance(exc, GeneratorExit):
                span.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            if span is not None:
                span.end()
            await gen.aclose()

    def __iter__(self) -> Iterator[str]:
        return _portal.iterate_sync(self.__aiter__())

    def text(self) -> str:
        """Consume the stream (sync) and return the whole text."""
        return "".join(self)
