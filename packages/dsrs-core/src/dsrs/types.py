"""The data that crosses between dsrs and a provider: messages, requests, responses.

These are small frozen dataclasses (not pydantic models) because they sit on the hot path of
every call. ``LMRequest`` is the *final* request after the LM's settings are applied; it is what a
provider's codec encodes and what the cache key is computed from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, cast

from dsrs._frozen import fast_init
from dsrs._parts import Audio, File, Image, Media, Part, Text, UnsupportedPartError, part_from_dict, sha256_hex
from dsrs._usage import Cost, LmUsage, UsageRecord
from dsrs._validate import InvalidTypeError

__all__ = [
    "Audio",
    "Content",
    "File",
    "Image",
    "Media",
    "Part",
    "Text",
    "UnsupportedPartError",
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


@fast_init
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


#: A message's content: text, or a sequence of parts (never a mix of types other than these).
Content = Union[str, tuple[Part, ...]]


@fast_init
@dataclass(frozen=True, slots=True)
class Message:
    """One chat message.

    ``content`` is a string or a tuple of parts (:class:`Text`, :class:`Image`, :class:`Audio`,
    :class:`File`); content made only of plain text parts is kept as one string. ``provider_state``
    is opaque data a provider attached to an assistant turn and needs back on the next request
    (Anthropic's signed thinking blocks, Gemini's thought signatures), keyed by the provider's wire
    name so that another provider ignores it; :meth:`LMResponse.message` carries it over.
    """

    role: Role
    content: Content | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    provider_state: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"unknown message role {self.role!r}; expected one of {sorted(_ROLES)}")
        content = self.content
        if content is not None and not isinstance(content, str):
            object.__setattr__(self, "content", _normalize_content(content))

    @property
    def text(self) -> str:
        """The message's text: the string content, or its text parts joined."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "".join(p.text for p in content if isinstance(p, Text))

    @property
    def parts(self) -> tuple[Part, ...]:
        """The content as parts (a string is one :class:`Text`)."""
        content = self.content
        if content is None:
            return ()
        if isinstance(content, str):
            return (Text(content),)
        return content

    def to_dict(self) -> dict[str, Any]:
        content = self.content
        d: dict[str, Any] = {
            "role": self.role,
            "content": content if content is None or isinstance(content, str) else [p.to_dict() for p in content],
        }
        if self.name is not None:
            d["name"] = self.name
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            d["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.provider_state:
            d["provider_state"] = dict(self.provider_state)
        return d


def _normalize_content(content: Any) -> Content:
    """A string, one part, or a sequence of strings / parts / OpenAI-style part dicts."""
    if isinstance(content, (Text, Media)):
        content = (content,)
    elif isinstance(content, (bytes, bytearray)):
        raise TypeError(
            "message content must be str or parts, got bytes: wrap them, e.g. dsrs.Image.from_bytes(data, 'image/png')"
        )
    elif not isinstance(content, Sequence) or isinstance(content, Mapping):
        raise TypeError(f"message content must be a str or a list of parts, got {type(content).__name__}")
    parts: list[Part] = []
    for item in content:
        if isinstance(item, str):
            parts.append(Text(item))
        elif isinstance(item, (Text, Media)):
            parts.append(item)  # type: ignore[arg-type]
        elif isinstance(item, Mapping):
            parts.append(part_from_dict(item))
        else:
            raise TypeError(
                f"a content part must be a str, dsrs.Text/Image/Audio/File or a dict, got {type(item).__name__}"
            )
    if all(isinstance(p, Text) and not p.options for p in parts):
        return "".join(p.text for p in parts)  # type: ignore[union-attr]
    return tuple(parts)


MessagesInput = Union[str, Message, Mapping[str, Any], Sequence[Union[Message, Mapping[str, Any]]]]


def _message_from_mapping(m: Mapping[str, Any]) -> Message:
    try:
        role = m["role"]
    except KeyError:
        raise ValueError(f"a message needs a 'role' key, got keys {sorted(m)}") from None
    calls = tuple(_tool_call_from(tc) for tc in m.get("tool_calls") or ())
    state = m.get("provider_state")
    if state is not None and not isinstance(state, Mapping):
        raise TypeError(f"a message's provider_state must be a dict, got {type(state).__name__}")
    return Message(
        role=role,
        content=m.get("content"),
        name=m.get("name"),
        tool_call_id=m.get("tool_call_id"),
        tool_calls=calls,
        provider_state=state,
    )


def _tool_call_from(tc: Any) -> ToolCall:
    """A ToolCall, or a dict in dsrs's shape (``name``/``arguments``) or OpenAI's (``function``)."""
    if isinstance(tc, ToolCall):
        return tc
    if not isinstance(tc, Mapping):
        raise TypeError(f"a tool call must be a dsrs.ToolCall or a dict, got {type(tc).__name__}")
    fn = tc.get("function")
    src = fn if isinstance(fn, Mapping) else tc
    name, args = src.get("name"), src.get("arguments", "{}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a tool call needs a 'name' (str), got keys {sorted(str(k) for k in tc)}")
    if not isinstance(args, str):
        args = json.dumps(args)
    return ToolCall(id=str(tc.get("id") or ""), name=name, arguments=args)


_MESSAGES_HINT = "a prompt str, a dsrs.Message, a message dict, or a list of them"


def normalize_messages(messages: MessagesInput) -> tuple[Message, ...]:
    """Accept a prompt string, one message, one part, or a list of messages (dicts or :class:`Message`)."""
    cls = messages.__class__
    if cls is not list and cls is not tuple:  # lists and tuples (what adapters pass) skip these checks
        if isinstance(messages, str):
            return (Message("user", messages),)
        if isinstance(messages, Message):
            return (messages,)
        if isinstance(messages, (Text, Media)):
            return (Message("user", (messages,)),)  # type: ignore[arg-type]
        if isinstance(messages, Mapping):
            return (_message_from_mapping(messages),)
        if not isinstance(messages, Sequence) or isinstance(messages, (bytes, bytearray)):
            raise InvalidTypeError("messages", messages, _MESSAGES_HINT)
    out: list[Message] = []
    for i, m in enumerate(cast("Sequence[Message | Mapping[str, Any]]", messages)):
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, Mapping):
            out.append(_message_from_mapping(m))
        else:
            raise InvalidTypeError(f"messages[{i}]", m, "a dsrs.Message or a message dict")
    if not out:
        raise ValueError("messages is empty")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: name, description and a JSON-Schema for its arguments.

    ``strict`` asks wires that support it to constrain arguments to the schema exactly (``None``:
    the wire's default). :meth:`from_function` builds one from a typed Python function.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Tool(name=...) must be a non-empty str, got {self.name!r}")
        if not isinstance(self.parameters, Mapping):
            raise TypeError(f"Tool(parameters=...) must be a JSON Schema dict, got {type(self.parameters).__name__}")

    @classmethod
    def from_function(cls, fn: Any, *, name: str | None = None, strict: bool | None = None) -> Tool:
        """Describe ``fn``: schema from its type hints (pydantic), description from its docstring,
        ``required`` = parameters without defaults."""
        from dsrs._tools import tool_from_function

        return tool_from_function(fn, name=name, strict=strict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}
        if self.strict is not None:
            d["strict"] = self.strict
        return d


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


# orjson (the ``fast`` extra) sorts and encodes ~10x faster, and a cache hit pays this on every
# call; imported on the first cache key (with uuid and datetime it costs ~9 ms of ``import dsrs``).
# ``False``: not installed.
_orjson: Any = None


def _sorted_json(data: Any) -> bytes:
    global _orjson
    if _orjson is None:
        try:
            import orjson as _orjson
        except ImportError:  # pragma: no cover - depends on the environment
            _orjson = False
    if _orjson is not False:
        try:
            encoded: bytes = _orjson.dumps(data, option=_orjson.OPT_SORT_KEYS | _orjson.OPT_NON_STR_KEYS, default=str)
            return encoded
        except TypeError:  # e.g. an integer too large for orjson: fall back
            pass
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


@fast_init
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
        return sha256_hex(_sorted_json(self.canonical()))


@fast_init
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
    provider_state: Mapping[str, Any] | None = None

    def message(self) -> Message:
        """This answer as the assistant message to append for the next turn (tool calls and
        provider state included, so e.g. signed thinking blocks go back to the provider)."""
        return Message(
            "assistant",
            self.text or None,
            tool_calls=self.tool_calls,
            provider_state=self.provider_state,
        )

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
            "provider_state": dict(self.provider_state) if self.provider_state else None,
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
            provider_state=d.get("provider_state"),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One piece of a stream. The last chunk carries the whole ``response`` (with usage)."""

    text: str = ""
    reasoning: str = ""
    response: LMResponse | None = None
