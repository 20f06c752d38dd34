"""The Harmony format of gpt-oss: render conversations, parse completions into channels.

Written from OpenAI's format description (openai/harmony ``docs/format.md``). A message is
``<|start|>{header}<|message|>{content}<|end|>``; the header holds the role (or, for a tool's
output, the tool name and ``to=assistant``), ``<|channel|>{analysis|commentary|final}``, an optional
recipient ``to=functions.x`` and a content type ``<|constrain|>json``. The model stops sampling with
``<|return|>`` (done) or ``<|call|>`` (wants a tool).

With ``--jinja`` llama-server renders and parses Harmony itself (``reasoning_content``); this module
is used when raw Harmony text reaches us (``--reasoning-format none``, ``/v1/completions``) and by
callers that build prompts themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsrs.types import Message, Tool, ToolCall

__all__ = [
    "START",
    "END",
    "MESSAGE",
    "CHANNEL",
    "CONSTRAIN",
    "RETURN",
    "CALL",
    "CHANNELS",
    "HarmonyMessage",
    "ParsedCompletion",
    "HarmonyParseError",
    "render_message",
    "render_system",
    "render_developer",
    "render_tools",
    "render_conversation",
    "parse_messages",
    "parse_completion",
    "looks_like_harmony",
    "HarmonyStreamSplitter",
]

START = "<|start|>"
END = "<|end|>"
MESSAGE = "<|message|>"
CHANNEL = "<|channel|>"
CONSTRAIN = "<|constrain|>"
RETURN = "<|return|>"
CALL = "<|call|>"
CHANNELS = ("analysis", "commentary", "final")
DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."


class HarmonyParseError(ValueError):
    """Text that is not valid Harmony where Harmony was expected."""


@dataclass(frozen=True)
class HarmonyMessage:
    """One Harmony message. ``role`` is the author: ``system``, ``developer``, ``user``, ``assistant``,
    or for a tool's output its name and addressee (``functions.get_weather to=assistant``)."""

    role: str
    content: str
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    #: How the message ended: ``<|end|>``, ``<|return|>``, ``<|call|>``, or ``""`` when truncated.
    terminator: str = END

    def header(self) -> str:
        head = self.role
        if self.channel is not None:
            head += CHANNEL + self.channel
        if self.recipient is not None:
            head += f" to={self.recipient}"
        if self.content_type is not None:
            head += f" {CONSTRAIN}{self.content_type}"
        return head


def render_message(msg: HarmonyMessage, *, terminator: str | None = None) -> str:
    """``<|start|>{header}<|message|>{content}{terminator}``."""
    return f"{START}{msg.header()}{MESSAGE}{msg.content}{terminator if terminator is not None else msg.terminator}"


def _tool_message(name: str, content: str) -> HarmonyMessage:
    # A tool's output: "<|start|>functions.x to=assistant<|channel|>commentary<|message|>...<|end|>"
    return HarmonyMessage(role=f"{name} to=assistant", content=content, channel="commentary")


def render_system(
    *,
    identity: str = DEFAULT_IDENTITY,
    knowledge_cutoff: str | None = "2024-06",
    current_date: str | None = None,
    reasoning: str | None = "medium",
    channels: Sequence[str] = CHANNELS,
    function_tools: bool = False,
) -> str:
    """The system message: identity, dates, reasoning effort, valid channels."""
    lines = [identity]
    if knowledge_cutoff:
        lines.append(f"Knowledge cutoff: {knowledge_cutoff}")
    if current_date:
        lines.append(f"Current date: {current_date}")
    body = "\n".join(lines)
    if reasoning:
        body += f"\n\nReasoning: {reasoning}"
    if channels:
        body += f"\n\n# Valid channels: {', '.join(channels)}. Channel must be included for every message."
        if function_tools:
            body += "\nCalls to these tools must go to the commentary channel: 'functions'."
    return render_message(HarmonyMessage("system", body))


def _ts_type(schema: Mapping[str, Any], indent: str = "") -> str:
    """JSON Schema -> the TypeScript-like type Harmony uses for tool arguments."""
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_ts_type(s, indent) for s in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_ts_type({**schema, "type": k}, indent) for k in kind)
    if kind == "string":
        return "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        items = schema.get("items")
        inner = _ts_type(items, indent) if isinstance(items, Mapping) else "any"
        return f"{inner}[]" if " " not in inner else f"Array<{inner}>"
    if kind == "object" or "properties" in schema:
        return _ts_object(schema, indent)
    return "any"


def _ts_object(schema: Mapping[str, Any], indent: str = "") -> str:
    props: Mapping[str, Any] = schema.get("properties") or {}
    if not props:
        return "object"
    required = set(schema.get("required") or ())
    lines = ["{"]
    for name, sub in props.items():
        if not isinstance(sub, Mapping):
            sub = {}
        if sub.get("description"):
            lines.append(f"{indent}// {sub['description']}")
        optional = "" if name in required else "?"
        line = f"{indent}{name}{optional}: {_ts_type(sub, indent)},"
        if "default" in sub:
            default = sub["default"]
            line += f" // default: {default if isinstance(default, str) else json.dumps(default)}"
        lines.append(line)
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def render_tools(tools: Sequence[Tool], namespace: str = "functions") -> str:
    """The ``# Tools`` section of a developer message, one ``type name = (_: {...}) => any;`` per tool."""
    parts = [f"# Tools\n\n## {namespace}\n\nnamespace {namespace} {{\n"]
    for tool in tools:
        if tool.description:
            parts.append(f"// {tool.description}")
        params = dict(tool.parameters or {})
        if params.get("properties"):
            parts.append(f"type {tool.name} = (_: {_ts_object(params)}) => any;\n")
        else:
            parts.append(f"type {tool.name} = () => any;\n")
    parts.append(f"}} // namespace {namespace}")
    return "\n".join(parts)


def render_developer(
    instructions: str | None,
    *,
    tools: Sequence[Tool] = (),
    response_format: tuple[str, Mapping[str, Any]] | None = None,
) -> str:
    """The developer message: ``# Instructions``, optional ``# Tools`` and ``# Response Formats``."""
    sections = []
    if instructions:
        sections.append(f"# Instructions\n\n{instructions}")
    if tools:
        sections.append(render_tools(tools))
    if response_format is not None:
        name, schema = response_format
        sections.append(f"# Response Formats\n\n## {name}\n\n{json.dumps(dict(schema), separators=(',', ':'))}")
    return render_message(HarmonyMessage("developer", "\n\n".join(sections)))


def render_conversation(
    messages: Sequence[Message],
    *,
    tools: Sequence[Tool] = (),
    reasoning: str | None = "medium",
    current_date: str | None = None,
    knowledge_cutoff: str | None = "2024-06",
    response_format: tuple[str, Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = True,
) -> str:
    """A dsrs conversation as a Harmony prompt, ending in ``<|start|>assistant`` for completion.

    dsrs ``system`` and ``developer`` messages become the developer message's instructions (Harmony's
    own system message carries identity, dates and reasoning effort). Assistant messages go to the
    ``final`` channel (their reasoning is dropped, as the format asks after a final answer); tool
    calls are ``commentary`` messages to ``functions.<name>`` ending in ``<|call|>``; tool results
    are messages from ``functions.<name>``.
    """
    out = [
        render_system(
            reasoning=reasoning,
            current_date=current_date,
            knowledge_cutoff=knowledge_cutoff,
            function_tools=bool(tools),
        )
    ]
    # Harmony is text only: media parts are refused before rendering (see the provider), so
    # ``m.text`` is the whole content here.
    instructions = "\n\n".join(m.text for m in messages if m.role in ("system", "developer")) or None
    if instructions or tools or response_format:
        out.append(render_developer(instructions, tools=tools, response_format=response_format))
    call_names: dict[str, str] = {}
    for m in messages:
        if m.role in ("system", "developer"):
            continue
        if m.role == "user":
            out.append(render_message(HarmonyMessage("user", m.text)))
        elif m.role == "assistant":
            if m.text:
                out.append(render_message(HarmonyMessage("assistant", m.text, channel="final")))
            for call in m.tool_calls:
                call_names[call.id] = call.name
                msg = HarmonyMessage(
                    "assistant",
                    call.arguments,
                    channel="commentary",
                    recipient=f"functions.{call.name}",
                    content_type="json",
                    terminator=CALL,
                )
                out.append(render_message(msg))
        elif m.role == "tool":
            name = m.name or call_names.get(m.tool_call_id or "", "tool")
            out.append(render_message(_tool_message(f"functions.{name}", m.text)))
    if add_generation_prompt:
        out.append(f"{START}assistant")
    return "".join(out)


# --- parsing -------------------------------------------------------------------------------------

_TERMINATORS = (END, RETURN, CALL)
_SPECIAL = re.compile(r"<\|(start|end|message|channel|constrain|return|call)\|>")


def looks_like_harmony(text: str) -> bool:
    """Does ``text`` carry Harmony structure (a channel header or message markers)?"""
    return CHANNEL in text and MESSAGE in text


def _parse_header(header: str, role: str | None) -> HarmonyMessage:
    header = header.strip()
    content_type = None
    if CONSTRAIN in header:
        header, _, content_type = header.partition(CONSTRAIN)
        content_type = content_type.strip() or None
    channel = None
    recipient = None
    if CHANNEL in header:
        head, _, chan = header.partition(CHANNEL)
        chan_parts = chan.split()
        channel = chan_parts[0] if chan_parts else None
        for part in chan_parts[1:]:
            if part.startswith("to="):
                recipient = part[3:]
        header = head
    head_parts = header.split()
    if head_parts:
        role = head_parts[0]
        for part in head_parts[1:]:
            if part.startswith("to="):
                recipient = part[3:]
    if role is None:
        raise HarmonyParseError(f"message header without a role: {header!r}")
    # "functions.x to=assistant" is a tool's output, addressed to the assistant.
    if recipient == "assistant" and role not in ("system", "developer", "user", "assistant"):
        role, recipient = f"{role} to=assistant", None
    return HarmonyMessage(role=role, content="", channel=channel, recipient=recipient, content_type=content_type)


def parse_messages(text: str, *, role: str | None = "assistant") -> list[HarmonyMessage]:
    """Split Harmony text into messages. ``text`` may start mid-header, as a completion does
    (``<|channel|>analysis<|message|>...``), in which case the first message's role is ``role``.
    A last message without a terminator (``max_tokens`` reached) is kept with ``terminator=""``."""
    messages: list[HarmonyMessage] = []
    pos = 0
    text = text.lstrip()
    first = True
    while pos < len(text):
        if text.startswith(START, pos):
            pos += len(START)
            current_role: str | None = None
        elif first and _has_header(text, pos):
            current_role = role
        else:
            # Stray text between messages (a model that did not follow the format): keep as final.
            nxt = text.find(START, pos)
            chunk = text[pos:] if nxt < 0 else text[pos:nxt]
            if chunk.strip():
                messages.append(HarmonyMessage(role or "assistant", chunk, channel="final", terminator=""))
            if nxt < 0:
                break
            pos = nxt
            continue
        first = False
        msg_at = text.find(MESSAGE, pos)
        if msg_at < 0:
            raise HarmonyParseError(f"message header without {MESSAGE}: {text[pos : pos + 80]!r}")
        header = _parse_header(text[pos:msg_at], current_role)
        pos = msg_at + len(MESSAGE)
        ends = [(text.find(t, pos), t) for t in _TERMINATORS]
        found = [(i, t) for i, t in ends if i >= 0]
        nxt_start = text.find(START, pos)
        if found:
            end_at, term = min(found)
            if 0 <= nxt_start < end_at:  # a new message began before this one was closed
                end_at, term = nxt_start, ""
        elif nxt_start >= 0:
            end_at, term = nxt_start, ""
        else:
            end_at, term = len(text), ""
        content = text[pos:end_at]
        messages.append(
            HarmonyMessage(
                role=header.role,
                content=content,
                channel=header.channel,
                recipient=header.recipient,
                content_type=header.content_type,
                terminator=term,
            )
        )
        pos = end_at + len(term)
        while pos < len(text) and text[pos] in "\r\n":
            pos += 1
    return messages


def _has_header(text: str, pos: int) -> bool:
    """Does a completion's first header (``<|channel|>...<|message|>``) start at ``pos``?"""
    msg_at = text.find(MESSAGE, pos)
    nxt = text.find(START, pos)
    return msg_at >= 0 and (nxt < 0 or msg_at < nxt) and text.startswith(CHANNEL, pos)


@dataclass(frozen=True)
class ParsedCompletion:
    """A completion split by channel: ``final`` is the answer, ``reasoning`` the analysis (CoT)."""

    final: str
    reasoning: str
    commentary: str
    tool_calls: tuple[ToolCall, ...] = ()
    messages: tuple[HarmonyMessage, ...] = field(default_factory=tuple)


def parse_completion(text: str) -> ParsedCompletion:
    """Parse what the model generated after ``<|start|>assistant`` into channels and tool calls."""
    msgs = parse_messages(text, role="assistant")
    final: list[str] = []
    analysis: list[str] = []
    commentary: list[str] = []
    calls: list[ToolCall] = []
    for m in msgs:
        if m.recipient is not None and m.recipient != "assistant":
            name = m.recipient.removeprefix("functions.")
            calls.append(ToolCall(id=f"call_{len(calls)}", name=name, arguments=m.content))
        elif m.channel == "analysis":
            analysis.append(m.content)
        elif m.channel == "commentary":
            commentary.append(m.content)
        else:
            final.append(m.content)
    return ParsedCompletion(
        final="".join(final),
        reasoning="\n".join(analysis),
        commentary="\n".join(commentary),
        tool_calls=tuple(calls),
        messages=tuple(msgs),
    )


def strip_specials(text: str) -> str:
    """Remove Harmony special tokens (for display of malformed output)."""
    return _SPECIAL.sub("", text)


class HarmonyStreamSplitter:
    """Split raw Harmony text arriving in pieces into answer (``final``) and reasoning deltas.

    ``feed(piece)`` returns ``(answer_delta, reasoning_delta)``; ``close()`` flushes what was held
    back. What it emits, joined, equals :func:`parse_completion` of the whole text. A piece that ends
    inside a marker (``<|chan``) or a header (``<|start|>assistant<|channel|>fi``) is held back
    until the rest arrives.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._final = 0
        self._reasoning = 0

    def feed(self, piece: str) -> tuple[str, str]:
        self._buf += piece
        return self._emit(closing=False)

    def close(self) -> tuple[str, str]:
        return self._emit(closing=True)

    def _emit(self, *, closing: bool) -> tuple[str, str]:
        text = self._buf
        if not closing:
            text = text.removesuffix("<")  # maybe the start of a marker
            cut = text.rfind("<|")
            if cut >= 0 and "|>" not in text[cut:]:
                text = text[:cut]
            # A header still arriving: from the last <|start|> (or a leading <|channel|>) with no
            # <|message|> after it yet.
            head_at = text.rfind(START)
            if head_at < 0 and text.lstrip().startswith(CHANNEL):
                head_at = len(text) - len(text.lstrip())
            if head_at >= 0 and text.find(MESSAGE, head_at) < 0:
                text = text[:head_at]
        try:
            parsed = parse_completion(text)
        except HarmonyParseError:
            if not closing:
                return "", ""  # a header is still arriving
            parsed = ParsedCompletion(final=strip_specials(text), reasoning="", commentary="")
        answer = parsed.final[self._final :]
        reasoning = parsed.reasoning[self._reasoning :]
        self._final = len(parsed.final)
        self._reasoning = len(parsed.reasoning)
        return answer, reasoning
