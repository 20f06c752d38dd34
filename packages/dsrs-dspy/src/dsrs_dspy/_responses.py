"""A dsrs answer as a ``dspy.lm15.Response``, with dsrs's usage and cost carried to DSPy.

Tokens go in ``Response.usage`` (DSPy's usage tracker and history read them). What a call cost
(USD and msats), which lane and provider answered and whether dsrs's cache served it go in
``Response.provider_data["dsrs"]``; :class:`dsrs_dspy.DsrsLM` copies the USD figure into each DSPy
history entry's ``cost``, which DSPy itself leaves empty for a custom engine.
"""

from __future__ import annotations

import json
from typing import Any

from dspy import lm15

from dsrs import LMResponse, LmUsage

__all__ = ["dsrs_details", "to_lm15_response", "to_lm15_usage"]

_FINISH_REASONS = {
    "stop": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_call",
    "tool_call": "tool_call",
    "function_call": "tool_call",
    "content_filter": "content_filter",
    "error": "error",
}


def to_lm15_usage(usage: LmUsage) -> Any:
    """Tokens as DSPy counts them. A dsrs cache hit spent nothing, so it reports no billed tokens
    (as DSPy does for its own cache hits); its tokens stay in ``provider_data``."""
    if usage.cache_hit:
        return lm15.Usage(input_tokens=0, output_tokens=0, total_tokens=0)
    cache_write = int(getattr(usage, "cache_write_tokens", 0) or 0)
    return lm15.Usage(
        input_tokens=max(usage.prompt_tokens, 0),
        output_tokens=max(usage.completion_tokens, 0),
        total_tokens=max(usage.total_tokens, 0),
        cache_read_tokens=max(usage.cached_tokens, 0) or None,
        cache_write_tokens=max(cache_write, 0) or None,
        reasoning_tokens=max(usage.reasoning_tokens, 0) or None,
    )


def dsrs_details(response: LMResponse) -> dict[str, Any]:
    """The JSON ``provider_data["dsrs"]`` of an answer: who answered and what it cost."""
    usage = response.usage
    return {
        "provider": response.provider,
        "model": response.model,
        "lane": response.lane,
        "cache_hit": usage.cache_hit,
        "cost_usd": usage.cost_usd,
        "cost_msats": usage.cost_msats,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def _model_of(response: LMResponse, fallback: str) -> str:
    if response.provider and response.model:
        return f"{response.provider}:{response.model}"
    return response.model or fallback


def finish_reason(value: str | None, has_tool_calls: bool) -> str:
    if value is None:
        return "tool_call" if has_tool_calls else "stop"
    return _FINISH_REASONS.get(value, "stop" if not has_tool_calls else "tool_call")


def _tool_input(arguments: str, name: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise lm15.ProviderError(
            f"the model's arguments for tool {name!r} are not JSON: {exc.msg} at {exc.pos}", provider="dsrs"
        ) from None
    if not isinstance(parsed, dict):
        raise lm15.ProviderError(
            f"the model's arguments for tool {name!r} are a JSON {type(parsed).__name__}, not an object",
            provider="dsrs",
        )
    return parsed


def to_lm15_response(response: LMResponse, requested_model: str) -> Any:
    """``response`` as a ``dspy.lm15.Response`` (reasoning as a thinking part, tool calls as parts)."""
    parts: list[Any] = []
    if response.reasoning:
        parts.append(lm15.ThinkingPart(response.reasoning))
    if response.text or not response.tool_calls:
        parts.append(lm15.TextPart(response.text or ""))
    for call in response.tool_calls:
        parts.append(lm15.ToolCallPart(call.id, call.name, _tool_input(call.arguments, call.name)))
    return lm15.Response(
        id=None,
        model=_model_of(response, requested_model),
        message=lm15.Message.assistant(parts),
        finish_reason=finish_reason(response.finish_reason, bool(response.tool_calls)),
        usage=to_lm15_usage(response.usage),
        provider_data={"dsrs": dsrs_details(response)},
    )
