"""DSPy engines (``complete(Request) -> Response``) that answer through a dsrs ``LM`` or ``LaneMux``.

DSPy 3.4's extension point: an object with ``complete``/``stream``/``close`` (and an async twin with
``async complete``/``stream``/``aclose``) passed to ``dspy.LM(engine=..., async_engine=...)``. The
engine makes one attempt; everything dsrs does around a call happens inside it — a LaneMux's
retries, failover and msats budgets, dsrs's cache, pricing, the usage hooks.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any, Union

from dspy import lm15

from dsrs import LM, LaneMux, LMResponse, errors
from dsrs_dspy._errors import to_lm15_error
from dsrs_dspy._requests import DsrsCall, to_dsrs_call
from dsrs_dspy._responses import dsrs_details, finish_reason, to_lm15_response, to_lm15_usage

__all__ = ["AsyncDsrsEngine", "DsrsEngine", "Target"]

Target = Union[LM, LaneMux]

_MAX_DERIVED = 32


class _Calls:
    """How one DSPy request becomes a dsrs call on the target, shared by both engines."""

    def __init__(self, target: Target, lane: str | None = None) -> None:
        if not isinstance(target, (LM, LaneMux)):
            raise TypeError(f"dsrs_dspy needs a dsrs.LM or dsrs.LaneMux, got {type(target).__name__}")
        if lane is not None and not isinstance(target, LaneMux):
            raise TypeError(f"lane={lane!r} selects a lane of a dsrs.LaneMux; the target is a {type(target).__name__}")
        if lane is not None and not isinstance(lane, str):
            raise TypeError(f"lane must be a lane name or a tier (a str), got {type(lane).__name__}")
        self.target = target
        self.lane = lane
        # dsrs.LM takes temperature/max_tokens/seed/stop as its own settings, not per call: one
        # derived LM per distinct combination, kept so its provider (and connections) is reused.
        self._derived: OrderedDict[tuple[tuple[str, Any], ...], LM] = OrderedDict()
        self._lock = threading.Lock()

    def _lm_for(self, lm: LM, settings: dict[str, Any]) -> LM:
        if not settings:
            return lm
        key = tuple(sorted(settings.items()))
        with self._lock:
            derived = self._derived.get(key)
            if derived is not None:
                self._derived.move_to_end(key)
                return derived
        derived = lm
        for name, value in settings.items():
            derived = derived.with_stop(*value) if name == "stop" else getattr(derived, f"with_{name}")(value)
        with self._lock:
            self._derived[key] = derived
            while len(self._derived) > _MAX_DERIVED:
                self._derived.popitem(last=False)
        return derived

    def bind(self, call: DsrsCall) -> tuple[Any, dict[str, Any]]:
        """``(callable owner, keyword arguments)`` for ``owner.call/acall/stream/astream(messages, **kw)``."""
        kwargs: dict[str, Any] = dict(call.options)
        if call.response_format is not None:
            kwargs["response_format"] = call.response_format
        if call.tools:
            kwargs["tools"] = call.tools
        if call.tool_choice is not None:
            kwargs["tool_choice"] = call.tool_choice
        if isinstance(self.target, LaneMux):
            # The mux takes per-call settings itself, and a lane name or tier to restrict the call to.
            return self.target, {**kwargs, **call.settings, "lane": self.lane}
        return self._lm_for(self.target, call.settings), kwargs

    @property
    def name(self) -> str:
        if isinstance(self.target, LaneMux):
            lanes = "dsrs:lanemux(" + ",".join(self.target.lane_names) + ")"
            return lanes if self.lane is None else f"{lanes}@{self.lane}"
        return f"dsrs:{self.target.model}"


def _prepared(calls: _Calls, request: Any) -> tuple[Any, dict[str, Any], DsrsCall]:
    if not isinstance(request, lm15.Request):
        raise TypeError(f"a dsrs_dspy engine answers a dspy.lm15.Request, got {type(request).__name__}")
    call = to_dsrs_call(request)
    owner, kwargs = calls.bind(call)
    return owner, kwargs, call


def _start(request: Any) -> Any:
    return lm15.StreamStartEvent(model=request.model)


def _end_events(response: LMResponse | None, request: Any, text_seen: bool) -> Iterator[Any]:
    if response is None:  # a dsrs stream always ends with its response; guard the contract anyway
        raise lm15.ServerError("the dsrs stream ended without a final response", provider="dsrs")
    index = 1 if text_seen else 0
    if response.reasoning:
        yield lm15.StreamDeltaEvent(lm15.ThinkingDelta(response.reasoning, part_index=index))
        index += 1
    if response.tool_calls:
        # dsrs streams text; tool calls arrive whole with the final response.
        full = to_lm15_response(response, request.model)
        for part in full.message.parts:
            if isinstance(part, lm15.ToolCallPart):
                yield lm15.StreamDeltaEvent(
                    lm15.ToolCallDelta(input=json.dumps(part.input), part_index=index, id=part.id, name=part.name)
                )
                index += 1
    yield lm15.StreamEndEvent(
        finish_reason=finish_reason(response.finish_reason, bool(response.tool_calls)),
        usage=to_lm15_usage(response.usage),
        provider_data={"dsrs": dsrs_details(response)},
    )


#: Request settings every dsrs provider takes (DSPy reads this to decide what to send).
SUPPORTED_PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "response_format",
        "tools",
        "tool_choice",
        "stream",
    }
)


class _Capabilities:
    """What DSPy asks a custom engine before building a request (``dspy.clients.capabilities``)."""

    _calls: _Calls
    supports_function_calling = True  # every dsrs provider takes tools (Tool / ToolCall)
    supports_reasoning = False  # not promised across providers: reasoning is returned when a model gives it
    supported_params = SUPPORTED_PARAMS

    @property
    def target(self) -> Target:
        return self._calls.target

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # The engine is borrowed, as DSPy treats custom engines: a deep copy of the DSPy LM (which
        # optimizers make of whole programs) shares it, and with it the dsrs LM or LaneMux, whose
        # budgets, lane health and connections must stay one.
        return self

    @property
    def supports_response_schema(self) -> bool:
        """Whether a JSON schema reaches the model: the LM's provider takes ``response_format``, or,
        for a LaneMux, some lane does (a lane that does not is sent the request without it)."""
        target = self._calls.target
        lms = [lane.lm for lane in target.lanes] if isinstance(target, LaneMux) else [target]
        return any(bool(getattr(lm, "supports_response_format", False)) for lm in lms)


class DsrsEngine(_Capabilities):
    """Sync DSPy engine over a dsrs ``LM`` or ``LaneMux`` (which stays the caller's: ``close`` is a no-op).

    ``lane`` (a LaneMux only) restricts every call to that lane name or tier, as ``mux.call(lane=)``.
    """

    def __init__(self, target: Target, *, lane: str | None = None) -> None:
        self._calls = _Calls(target, lane)

    def complete(self, request: Any) -> Any:
        owner, kwargs, call = _prepared(self._calls, request)
        try:
            response = owner.call(list(call.messages), **kwargs)
        except errors.LMError as exc:
            raise to_lm15_error(exc) from exc
        return to_lm15_response(response, request.model)

    def stream(self, request: Any) -> Iterator[Any]:
        owner, kwargs, call = _prepared(self._calls, request)
        stream = owner.stream(list(call.messages), **kwargs)
        yield _start(request)
        text_seen = False
        try:
            for delta in stream:
                text_seen = True
                yield lm15.StreamDeltaEvent(lm15.TextDelta(delta))
        except errors.LMError as exc:
            raise to_lm15_error(exc) from exc
        yield from _end_events(stream.response, request, text_seen)

    def close(self) -> None:
        """Nothing to release: the dsrs target is borrowed, as DSPy expects of a custom engine."""


class AsyncDsrsEngine(_Capabilities):
    """Async DSPy engine over a dsrs ``LM`` or ``LaneMux`` (``lane`` as for :class:`DsrsEngine`)."""

    def __init__(self, target: Target, *, lane: str | None = None) -> None:
        self._calls = _Calls(target, lane)

    async def complete(self, request: Any) -> Any:
        owner, kwargs, call = _prepared(self._calls, request)
        try:
            response = await owner.acall(list(call.messages), **kwargs)
        except errors.LMError as exc:
            raise to_lm15_error(exc) from exc
        return to_lm15_response(response, request.model)

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        owner, kwargs, call = _prepared(self._calls, request)
        stream = owner.astream(list(call.messages), **kwargs)
        yield _start(request)
        text_seen = False
        try:
            async for delta in stream:
                text_seen = True
                yield lm15.StreamDeltaEvent(lm15.TextDelta(delta))
        except errors.LMError as exc:
            raise to_lm15_error(exc) from exc
        for event in _end_events(stream.response, request, text_seen):
            yield event

    async def aclose(self) -> None:
        """Nothing to release: the dsrs target is borrowed."""
