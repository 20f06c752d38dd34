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


def _unsupported(what: str, feature: str | None = None) -> lm15.UnsupportedFeatureError:
    """The refusal of one request field; ``feature`` is its path (lm15's convention), e.g. ``config.logprobs``."""
    return lm15.UnsupportedFeatureError(
        f"dsrs_dspy: {what} cannot be sent through dsrs (refused before sending)", feature=feature, provider="dsrs"
    )


def _text_of(parts: Any, where: str) -> str:
    """The text of prompt parts; any other part (image, audio, document, data) is refused."""
    if isinstance(parts, str):
        return parts
    texts: list[str] = []
    for i, part in enumerate(parts):
        if isinstance(part, lm15.TextPart):
            texts.append(part.text)
        else:
            raise _unsupported(f"a {part.type} part ({type(part).__name__}; dsrs messages carry text)", f"{where}[{i}]")
    return "\n".join(texts)


def _tool_result_text(part: Any, where: str) -> str:
    pieces: list[str] = []
    for i, item in enumerate(part.content):
        if isinstance(item, lm15.TextPart):
            pieces.append(item.text)
        elif isinstance(item, lm15.DataPart):
            pieces.append(json.dumps(item.value, ensure_ascii=False))
        else:
            raise _unsupported(f"a {item.type} part in a tool result ({type(item).__name__})", f"{where}.content[{i}]")
    return "\n".join(pieces)


def _messages(request: Any) -> list[Message]:
    out: list[Message] = []
    if request.system is not None:
        out.append(Message("system", _text_of(request.system, "system")))
    for index, message in enumerate(request.messages):
        where = f"messages[{index}].parts"
        if message.role in ("user", "developer"):
            # dsrs has no developer role; it is the application's instruction, as a system message is.
            out.append(Message("user" if message.role == "user" else "system", _text_of(message.parts, where)))
        elif message.role == "assistant":
            texts: list[str] = []
            calls: list[ToolCall] = []
            for i, part in enumerate(message.parts):
                if isinstance(part, lm15.TextPart):
                    texts.append(part.text)
                elif isinstance(part, lm15.ToolCallPart):
                    calls.append(ToolCall(part.id, part.name, json.dumps(part.input, ensure_ascii=False)))
                else:
                    raise _unsupported(f"a {part.type} part in an assistant message", f"{where}[{i}]")
            out.append(Message("assistant", "\n".join(texts) if texts else None, tool_calls=tuple(calls)))
        elif message.role == "tool":
            for i, part in enumerate(message.parts):
                if not isinstance(part, lm15.ToolResultPart):
                    raise _unsupported(f"a {part.type} part in a tool message", f"{where}[{i}]")
                text = _tool_result_text(part, f"{where}[{i}]")
                out.append(Message("tool", text, name=part.name, tool_call_id=part.id))
        else:  # pragma: no cover - lm15 validates roles
            raise _unsupported(f"the message role {message.role!r}", f"messages[{index}].role")
    return out


def _tools(request: Any) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for i, tool in enumerate(request.tools):
        if not isinstance(tool, lm15.FunctionTool):
            raise _unsupported(f"the provider-native tool {tool.name!r}", f"tools[{i}]")
        tools.append(Tool(tool.name, tool.description or "", dict(tool.parameters)))
    return tuple(tools)


def _tool_choice(choice: Any) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if choice.parallel is not None:
        raise _unsupported("ToolChoice.parallel", "config.tool_choice.parallel")
    if choice.allowed:
        # One required tool is the OpenAI wire's named tool choice; a subset the model may pick from
        # (or skip) has no spelling there, and forcing one instead would change what was asked.
        if len(choice.allowed) != 1 or choice.mode != "required":
            what = f"ToolChoice(mode={choice.mode!r}, allowed={list(choice.allowed)!r})"
            raise _unsupported(what, "config.tool_choice.allowed")
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
            raise _unsupported(f"Config.{name}", f"config.{name}")
    settings: dict[str, Any] = {k: getattr(config, k) for k in _REQUEST_FIELDS if getattr(config, k) is not None}
    if config.stop:
        settings["stop"] = tuple(config.stop)
    options: dict[str, Any] = {k: getattr(config, k) for k in _OPTION_FIELDS if getattr(config, k) is not None}
    if config.reasoning is not None:
        if config.reasoning.thinking_budget is not None or config.reasoning.summary is not None:
            raise _unsupported("Reasoning.thinking_budget / Reasoning.summary", "config.reasoning")
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
