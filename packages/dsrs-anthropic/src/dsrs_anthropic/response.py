"""A Messages API ``Message`` object as an :class:`~dsrs.types.LMResponse`, sans-IO.

The object (https://docs.anthropic.com/en/api/messages, "Returns") has ``type: "message"``, a
``content`` list of blocks (``text``, ``thinking`` with its ``signature``, ``redacted_thinking``
with opaque ``data``, ``tool_use`` with ``id``/``name``/``input``), ``stop_reason`` and ``usage``.
Every field read is type-checked: a 2xx body of the wrong shape is a
:class:`~dsrs.errors.ResponseParseError` (a lane fault a LaneMux moves past), never a bare
``KeyError``. Token counts must be ints in ``[0, MAX_TOKENS_REPORTED]``: a server that reports a
negative, fractional or absurd count is not believed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dsrs.errors import ContentFilterError, ResponseParseError
from dsrs.types import LMRequest, LMResponse, LmUsage, ToolCall
from dsrs.wire import JSONDecodeError, json_dumps, json_loads
from dsrs_anthropic.messages import STATE_KEY

__all__ = ["FINISH_REASONS", "MAX_TOKENS_REPORTED", "decode_message", "loads", "parse_usage"]

#: ``stop_reason`` → dsrs ``finish_reason`` (https://docs.anthropic.com/en/api/handling-stop-reasons).
#: ``refusal`` raises :class:`~dsrs.errors.ContentFilterError` instead; unknown reasons pass through.
FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "pause_turn": "pause_turn",
}
#: Far above any context window: a count past it is a lie, not a large call.
MAX_TOKENS_REPORTED = 100_000_000
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def loads(data: bytes | str) -> Any:
    """JSON through dsrs's fast decoder; what it refuses (e.g. an int past 64 bits) is decoded again
    by the standard library, so a lying number is reported as the field it sits in."""
    try:
        return json_loads(data)
    except JSONDecodeError:
        return json.loads(data)  # raises json.JSONDecodeError / UnicodeDecodeError for non-JSON


def bad(request: LMRequest, message: str, body: bytes | str | None = None) -> ResponseParseError:
    return ResponseParseError(message, provider=request.provider or "anthropic", model=request.model, body=body)


def _count(raw: Mapping[str, Any], key: str, request: LMRequest) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS_REPORTED:
        shown = repr(value) if isinstance(value, (int, float, str, bool)) else type(value).__name__
        raise bad(request, f"usage.{key} must be an int in [0, {MAX_TOKENS_REPORTED}], got {shown[:40]}")
    return value


def usage_counts(raw: Any, request: LMRequest) -> dict[str, int]:
    """The checked token counts of a ``usage`` object (fields absent count 0)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad(request, f"usage must be an object, got {type(raw).__name__}")
    counts = {key: _count(raw, key, request) for key in _USAGE_FIELDS if key in raw}
    split = raw.get("cache_creation")
    if isinstance(split, dict):
        for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            if key in split:
                counts[key] = _count(split, key, request)
    elif split is not None:
        raise bad(request, f"usage.cache_creation must be an object, got {type(split).__name__}")
    return counts


def parse_usage(counts: Mapping[str, int]) -> LmUsage:
    """dsrs usage from checked counts: ``prompt_tokens`` counts all input (uncached + cache writes +
    cache reads, which the API reports apart), ``cached_tokens`` the reads, ``cache_write_tokens``
    the writes; 1-hour cache writes (priced higher) are in ``detail``."""
    uncached = counts.get("input_tokens", 0)
    writes = counts.get("cache_creation_input_tokens", 0)
    reads = counts.get("cache_read_input_tokens", 0)
    output = counts.get("output_tokens", 0)
    detail: dict[str, Any] = {}
    if counts.get("ephemeral_1h_input_tokens"):
        detail["cache_write_1h_tokens"] = min(counts["ephemeral_1h_input_tokens"], writes)
    return LmUsage.from_tokens(
        uncached + writes + reads,
        output,
        cached_tokens=reads,
        cache_write_tokens=writes,
        detail=detail,
    )


def _str(block: Mapping[str, Any], key: str, request: LMRequest, where: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise bad(request, f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def decode_blocks(
    content: Any, request: LMRequest, forced_tool: str | None
) -> tuple[str, str | None, tuple[ToolCall, ...], list[dict[str, Any]]]:
    """``(text, reasoning, tool_calls, thinking_blocks)`` from a ``content`` list.

    The input of the forced output tool (a response format on a model without native JSON output)
    is the answer's text, not a tool call.
    """
    if not isinstance(content, list):
        raise bad(request, f"message.content must be a list, got {type(content).__name__}")
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        where = f"content[{i}]"
        if not isinstance(block, dict):
            raise bad(request, f"{where} must be an object, got {type(block).__name__}")
        kind = block.get("type")
        if kind == "text":
            text.append(_str(block, "text", request, where))
        elif kind == "thinking":
            reasoning.append(_str(block, "thinking", request, where))
            thinking.append(
                {
                    "type": "thinking",
                    "thinking": block["thinking"],
                    "signature": _str(block, "signature", request, where),
                }
            )
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": _str(block, "data", request, where)})
        elif kind == "tool_use":
            call_id, name = _str(block, "id", request, where), _str(block, "name", request, where)
            args = block.get("input")
            if not isinstance(args, dict):
                raise bad(request, f"{where}.input must be an object, got {type(args).__name__}")
            encoded = json_dumps(args).decode("utf-8")
            if forced_tool is not None and name == forced_tool:
                text.append(encoded)
            else:
                calls.append(ToolCall(id=call_id, name=name, arguments=encoded))
        else:
            # Server tools and newer block types are only returned when a request asks for them,
            # which dsrs does not: one here is a wire dsrs does not know, said so rather than dropped.
            raise bad(request, f"{where} has a content block type dsrs does not know: {str(kind)[:40]!r}")
    return "".join(text), "".join(reasoning) or None, tuple(calls), thinking


def finish_reason(stop: Any, request: LMRequest, *, model: str | None) -> str | None:
    """The dsrs finish reason; a ``refusal`` raises ContentFilterError."""
    if stop is None:
        return None
    if not isinstance(stop, str):
        raise bad(request, f"stop_reason must be a string, got {type(stop).__name__}")
    if stop == "refusal":
        raise ContentFilterError(
            "Claude declined to answer (stop_reason 'refusal')", provider=request.provider or "anthropic", model=model
        )
    return FINISH_REASONS.get(stop, stop)


def build_response(
    request: LMRequest,
    *,
    content: Any,
    stop_reason: Any,
    counts: Mapping[str, int],
    raw_usage: Mapping[str, Any] | None,
    model: str | None,
    forced_tool: str | None,
) -> LMResponse:
    text, reasoning, calls, thinking = decode_blocks(content, request, forced_tool)
    finish = finish_reason(stop_reason, request, model=model)
    usage = parse_usage(counts)
    return LMResponse(
        text=text,
        usage=usage,
        tool_calls=calls,
        reasoning=reasoning,
        finish_reason=finish,
        raw_usage=dict(raw_usage) if raw_usage is not None else None,
        provider=request.provider or "anthropic",
        model=model,
        provider_state={STATE_KEY: {"thinking": thinking}} if thinking else None,
    )


def decode_message(
    data: Mapping[str, Any], request: LMRequest, *, forced_tool: str | None, body: bytes = b""
) -> LMResponse:
    """A ``Message`` object (``type: "message"``) as an answer."""
    if data.get("type") != "message":
        raise bad(request, f"expected a Message object (type 'message'), got type {str(data.get('type'))[:40]!r}", body)
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise bad(request, f"message.model must be a string, got {type(model).__name__}", body)
    usage = data.get("usage")
    return build_response(
        request,
        content=data.get("content"),
        stop_reason=data.get("stop_reason"),
        counts=usage_counts(usage, request),
        raw_usage=usage if isinstance(usage, Mapping) else None,
        model=model or request.model,
        forced_tool=forced_tool,
    )
