"""A ``dspy.lm15.Request`` as the messages and call options of a dsrs call.

Every field of the request either reaches dsrs or refuses the request with
``dspy.lm15.UnsupportedFeatureError`` naming it: nothing is dropped on the way (a temperature that
silently vanished, or an image the model never saw, would be a wrong answer that looks right).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dspy import lm15

from dsrs import Message, ResponseFormat, Tool, ToolCall

__all__ = ["DsrsCall", "to_dsrs_call"]

# Config fields with a dsrs request field of the same meaning.
_REQUEST_FIELDS = ("temperature", "max_tokens", "seed")
# Config fields sent as provider options under the OpenAI-wire name every dsrs provider reads.
_OPTION_FIELDS = ("top_p", "top_k", "frequency_penalty", "presence_penalty")
# Config fields dsrs has no way to carry (each refused by name when set).
_UNSUPPORTED_FIELDS = ("cache", "service_tier", "user_id", "store", "logprobs", "probabilities")


@dataclass(frozen=True, slots=True)
class DsrsCall:
    """What a dsrs ``LM``/``LaneMux`` call needs: messages, per-call settings, provider options."""

    messages: tuple[Message, ...]
    settings: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, seed, stop
    response_format: ResponseFormat | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _unsupported(what: str) -> lm15.UnsupportedFeatureError:
    return lm15.UnsupportedFeatureError(f"dsrs_dspy cannot send {what} through dsrs", provider="dsrs")


def _text_of(parts: Any, where: str) -> str:
    """The text of prompt parts; any other part (image, audio, document, data) is refused."""
    if isinstance(parts, str):
        return parts
    texts: list[str] = []
    for part in parts:
        if isinstance(part, lm15.TextPart):
            texts.append(part.text)
        else:
            raise _unsupported(f"a {type(part).__name__} in {where} (dsrs messages carry text)")
    return "\n".join(texts)


def _tool_result_text(part: Any) -> str:
    pieces: list[str] = []
    for item in part.content:
        if isinstance(item, lm15.TextPart):
            pieces.append(item.text)
        elif isinstance(item, lm15.DataPart):
            pieces.append(json.dumps(item.value, ensure_ascii=False))
        else:
            raise _unsupported(f"a {type(item).__name__} in a tool result")
    return "\n".join(pieces)


def _messages(request: Any) -> list[Message]:
    out: list[Message] = []
    if request.system is not None:
        out.append(Message("system", _text_of(request.system, "the system prompt")))
    for index, message in enumerate(request.messages):
        where = f"messages[{index}] ({message.role})"
        if message.role in ("user", "developer"):
            # dsrs has no developer role; it is the application's instruction, as a system message is.
            out.append(Message("user" if message.role == "user" else "system", _text_of(message.parts, where)))
        elif message.role == "assistant":
            texts: list[str] = []
            calls: list[ToolCall] = []
            for part in message.parts:
                if isinstance(part, lm15.TextPart):
                    texts.append(part.text)
                elif isinstance(part, lm15.ToolCallPart):
                    calls.append(ToolCall(part.id, part.name, json.dumps(part.input, ensure_ascii=False)))
                else:
                    raise _unsupported(f"a {type(part).__name__} in {where}")
            out.append(Message("assistant", "\n".join(texts) if texts else None, tool_calls=tuple(calls)))
        elif message.role == "tool":
            for part in message.parts:
                if not isinstance(part, lm15.ToolResultPart):
                    raise _unsupported(f"a {type(part).__name__} in {where}")
                out.append(Message("tool", _tool_result_text(part), name=part.name, tool_call_id=part.id))
        else:  # pragma: no cover - lm15 validates roles
            raise _unsupported(f"the message role {message.role!r}")
    return out


def _tools(request: Any) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for tool in request.tools:
        if not isinstance(tool, lm15.FunctionTool):
            raise _unsupported(f"the provider-native tool {tool.name!r}")
        tools.append(Tool(tool.name, tool.description or "", dict(tool.parameters)))
    return tuple(tools)


def _tool_choice(choice: Any) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if choice.parallel is not None:
        raise _unsupported("ToolChoice.parallel")
    if choice.allowed:
        if len(choice.allowed) != 1 or choice.mode not in ("required", "auto"):
            raise _unsupported(f"ToolChoice(mode={choice.mode!r}, allowed={list(choice.allowed)!r})")
        return {"type": "function", "function": {"name": choice.allowed[0]}}
    return str(choice.mode)


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    if value["type"] == "json_object":
        return ResponseFormat(type="json_object")
    return ResponseFormat(
        type="json_schema",
        name=value.get("name") or "response",
        schema=value["schema"],
        strict=value.get("strict", True),
    )


def to_dsrs_call(request: Any) -> DsrsCall:
    """Translate ``request`` (a ``dspy.lm15.Request``) into a :class:`DsrsCall`."""
    config = request.config
    for name in _UNSUPPORTED_FIELDS:
        if getattr(config, name, None) is not None:
            raise _unsupported(f"Config.{name}")
    settings: dict[str, Any] = {k: getattr(config, k) for k in _REQUEST_FIELDS if getattr(config, k) is not None}
    if config.stop:
        settings["stop"] = tuple(config.stop)
    options: dict[str, Any] = {k: getattr(config, k) for k in _OPTION_FIELDS if getattr(config, k) is not None}
    if config.reasoning is not None:
        if config.reasoning.thinking_budget is not None or config.reasoning.summary is not None:
            raise _unsupported("Reasoning.thinking_budget / Reasoning.summary")
        options["reasoning_effort"] = config.reasoning.effort
    # Provider-specific settings: DSPy already refused execution controls (model, stream, api_key...)
    # in them, so what is left is exactly what the caller meant for the provider.
    options.update(dict(config.extensions or {}))
    return DsrsCall(
        messages=tuple(_messages(request)),
        settings=settings,
        response_format=_response_format(config.response_format),
        tools=_tools(request),
        tool_choice=_tool_choice(config.tool_choice),
        options=options,
    )
