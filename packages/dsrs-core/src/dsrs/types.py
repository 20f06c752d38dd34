"""The data that crosses between dsrs and a provider: messages, requests, responses.

These are small frozen dataclasses (not pydantic models) because they sit on the hot path of
every call. ``LMRequest`` is the *final* request after the LM's settings are applied; it is what a
provider's codec encodes and what the cache key is computed from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from dsrs._usage import Cost, LmUsage, UsageRecord

__all__ = [
    "Cost",
    "LmUsage",
    "UsageRecord",
    "LMRequest",
    "LMResponse",
    "Message",
    "MessagesInput",
    "ResponseFormat",
    "Role",
    "StreamChunk",
    "Tool",
    "ToolCall",
    "normalize_messages",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
_ROLES = frozenset(("system", "developer", "user", "assistant", "tool"))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for. ``arguments`` is the JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        return json.loads(self.arguments or "{}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"unknown message role {self.role!r}; expected one of {sorted(_ROLES)}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            d["name"] = self.name
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            d["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        return d


MessagesInput = Union[str, Message, Mapping[str, Any], Sequence[Union[Message, Mapping[str, Any]]]]


def _message_from_mapping(m: Mapping[str, Any]) -> Message:
    try:
        role = m["role"]
    except KeyError:
        raise ValueError(f"a message needs a 'role' key, got keys {sorted(m)}") from None
    content = m.get("content")
    if content is not None and not isinstance(content, str):
        # OpenAI-style content parts: keep the text parts, in order.
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
        else:
            raise ValueError(f"message content must be a string, got {type(content).__name__}")
    calls = tuple(
        tc
        if isinstance(tc, ToolCall)
        else ToolCall(id=str(tc.get("id", "")), name=tc["name"], arguments=tc.get("arguments", "{}"))
        for tc in m.get("tool_calls") or ()
    )
    return Message(role=role, content=content, name=m.get("name"), tool_call_id=m.get("tool_call_id"), tool_calls=calls)


def normalize_messages(messages: MessagesInput) -> tuple[Message, ...]:
    """Accept a prompt string, one message, or a list of messages (dicts or :class:`Message`)."""
    if isinstance(messages, str):
        return (Message("user", messages),)
    if isinstance(messages, Message):
        return (messages,)
    if isinstance(messages, Mapping):
        return (_message_from_mapping(messages),)
    out: list[Message] = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, Mapping):
            out.append(_message_from_mapping(m))
        else:
            raise TypeError(f"messages must be str, Message or dict, got {type(m).__name__}")
    if not out:
        raise ValueError("messages is empty")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: name, description and a JSON-Schema for its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: ``json_schema`` (with ``schema``) or plain ``json_object``."""

    type: Literal["json_schema", "json_object"] = "json_schema"
    name: str = "response"
    schema: Mapping[str, Any] | None = None
    strict: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "schema": self.schema, "strict": self.strict}


def _canonical(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return _canonical(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


try:  # orjson (the ``fast`` extra) sorts and encodes ~10x faster; a cache hit pays this on every call
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]


def _sorted_json(data: Any) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(data, option=_orjson.OPT_SORT_KEYS | _orjson.OPT_NON_STR_KEYS, default=str)
        except TypeError:  # e.g. an integer too large for orjson: fall back
            pass
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


@dataclass(frozen=True, slots=True)
class LMRequest:
    """The final request for one call. ``model`` is the provider's own model name."""

    provider: str
    model: str
    messages: tuple[Message, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    response_format: ResponseFormat | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    base_url: str | None = None

    def canonical(self) -> dict[str, Any]:
        """Everything that reaches the wire, as plain JSON data (no secrets: keys are not here)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "messages": _canonical(self.messages),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop) if self.stop is not None else None,
            "response_format": _canonical(self.response_format),
            "tools": _canonical(self.tools),
            "tool_choice": _canonical(self.tool_choice),
            "options": _canonical(self.options),
        }

    def cache_key(self) -> str:
        """SHA-256 of the canonical request (sorted keys, compact UTF-8 JSON)."""
        return hashlib.sha256(_sorted_json(self.canonical())).hexdigest()


@dataclass(frozen=True, slots=True)
class LMResponse:
    """A provider's answer. ``reasoning`` holds thinking text, kept apart from ``text``."""

    text: str
    usage: LmUsage = field(default_factory=LmUsage)
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    finish_reason: str | None = None
    raw_usage: Mapping[str, Any] | None = None
    provider: str | None = None
    model: str | None = None
    lane: str | None = None

    @property
    def raw(self) -> Mapping[str, Any] | None:
        """The provider's own usage object, as it came off the wire."""
        return self.raw_usage

    @property
    def cache_hit(self) -> bool:
        return self.usage.cache_hit

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [tc.to_dict() for tc in self.tool_calls],
            "reasoning": self.reasoning,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "raw_usage": dict(self.raw_usage) if self.raw_usage is not None else None,
            "provider": self.provider,
            "model": self.model,
            "lane": self.lane,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LMResponse:
        u = dict(d.get("usage") or {})
        return cls(
            text=d.get("text", ""),
            usage=LmUsage(**u),
            tool_calls=tuple(ToolCall(**tc) for tc in d.get("tool_calls") or ()),
            reasoning=d.get("reasoning"),
            finish_reason=d.get("finish_reason"),
            raw_usage=d.get("raw_usage"),
            provider=d.get("provider"),
            model=d.get("model"),
            lane=d.get("lane"),
        )


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One piece of a stream. The last chunk carries the whole ``response`` (with usage)."""

    text: str = ""
    reasoning: str = ""
    response: LMResponse | None = None
