"""Messages and content blocks of a Messages API request, sans-IO.

* ``system`` is a top-level field (a string, or text blocks when a block carries ``cache_control``);
  there is no system role. dsrs ``system``/``developer`` messages are gathered into it, in order.
* There is no ``tool`` role: a dsrs ``tool`` message is a ``tool_result`` block in a user turn, and
  an assistant's ``tool_calls`` are ``tool_use`` blocks (https://docs.anthropic.com/en/docs/build-with-claude/tool-use).
* Signed ``thinking`` / ``redacted_thinking`` blocks kept in ``Message.provider_state["anthropic"]``
  go back first in their assistant turn, unmodified, as extended thinking with tools requires
  (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks).
* Content parts: text, image (base64 or URL; JPEG, PNG, GIF, WebP — .../build-with-claude/vision),
  document (PDF base64 or URL, plain text — .../build-with-claude/pdf-support). Audio, and other
  file types, are refused with :class:`~dsrs.types.UnsupportedPartError` before anything is sent.
* A part's ``options`` may carry ``cache_control`` (prompt caching,
  .../build-with-claude/prompt-caching); documents also ``title``, ``context`` and ``citations``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dsrs.errors import InvalidRequestError
from dsrs.types import File, Image, LMRequest, Message, Part, Text, UnsupportedPartError

__all__ = ["PROVIDER", "STATE_KEY", "encode_messages", "encode_part", "error"]

#: The key of this wire's data in ``Message.provider_state`` / ``LMResponse.provider_state``.
STATE_KEY = "anthropic"
PROVIDER = "anthropic"
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DOCUMENT_OPTIONS = ("title", "context", "citations")


def error(message: str, request: LMRequest) -> InvalidRequestError:
    """An InvalidRequestError for ``request`` (raised before anything is sent)."""
    return InvalidRequestError(message, provider=request.provider or PROVIDER, model=request.model)


def _cache_control(block: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    cc = options.get("cache_control")
    if cc is not None:
        block["cache_control"] = dict(cc) if isinstance(cc, Mapping) else cc
    return block


def _text_block(part: Text) -> dict[str, Any]:
    return _cache_control({"type": "text", "text": part.text}, part.options)


def encode_part(part: Part, request: LMRequest) -> dict[str, Any]:
    """One content part as a Messages API content block; UnsupportedPartError for what it cannot carry."""
    provider = request.provider or PROVIDER
    if isinstance(part, Text):
        return _text_block(part)
    if isinstance(part, Image):
        if part.url is not None:
            source: dict[str, Any] = {"type": "url", "url": part.url}
        elif part.media_type in _IMAGE_TYPES:
            source = {"type": "base64", "media_type": part.media_type, "data": part.base64()}
        else:
            raise UnsupportedPartError(
                f"{provider} takes images as JPEG, PNG, GIF or WebP, not {part.media_type!r}",
                provider=provider,
                model=request.model,
            )
        return _cache_control({"type": "image", "source": source}, part.options)
    if isinstance(part, File):
        if part.url is not None and part.media_type in ("application/pdf", "application/*", "application/octet-stream"):
            source = {"type": "url", "url": part.url}
        elif part.data is not None and part.media_type == "application/pdf":
            source = {"type": "base64", "media_type": "application/pdf", "data": part.base64()}
        elif part.data is not None and part.media_type == "text/plain":
            try:
                text = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise UnsupportedPartError(
                    f"{provider}: a text/plain document must be UTF-8", provider=provider, model=request.model
                ) from None
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            raise UnsupportedPartError(
                f"{provider} takes documents as PDF (bytes or URL) or UTF-8 text/plain bytes, "
                f"not {part.media_type!r}{' by URL' if part.url is not None else ''}",
                provider=provider,
                model=request.model,
            )
        block: dict[str, Any] = {"type": "document", "source": source}
        for key in _DOCUMENT_OPTIONS:
            if key in part.options:
                block[key] = part.options[key]
        if part.name and "title" not in block:
            block["title"] = part.name
        return _cache_control(block, part.options)
    raise UnsupportedPartError(
        f"{provider} cannot carry a {part.kind} part (the Messages API takes text, images and documents)",
        provider=provider,
        model=request.model,
    )


def _content(m: Message, request: LMRequest) -> str | list[dict[str, Any]]:
    content = m.content
    if isinstance(content, str):
        return content
    return [encode_part(p, request) for p in m.parts]


def _blocks(m: Message, request: LMRequest) -> list[dict[str, Any]]:
    content = _content(m, request)
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _thinking_blocks(m: Message) -> list[dict[str, Any]]:
    state = (m.provider_state or {}).get(STATE_KEY)
    if not isinstance(state, Mapping):
        return []
    blocks = state.get("thinking") or ()
    return [dict(b) for b in blocks if isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking")]


def _tool_input(arguments: str, name: str, request: LMRequest) -> Any:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        raise error(f"tool call {name!r}: arguments are not JSON: {arguments[:80]!r}", request) from None
    if not isinstance(value, dict):
        raise error(f"tool call {name!r}: arguments must be a JSON object, got {type(value).__name__}", request)
    return value


def _assistant(m: Message, request: LMRequest) -> dict[str, Any]:
    content = m.content
    if isinstance(content, str) and not m.tool_calls and not m.provider_state:
        return {"role": "assistant", "content": content}  # the common case, kept cheap
    for p in m.parts:
        if not isinstance(p, Text):  # an assistant turn holds text, tool_use and thinking only
            raise UnsupportedPartError(
                f"{request.provider or PROVIDER}: an assistant message takes text only, not a {p.kind} part",
                provider=request.provider or PROVIDER,
                model=request.model,
            )
    thinking = _thinking_blocks(m)
    if not thinking and not m.tool_calls:
        return {"role": "assistant", "content": _content(m, request)}
    blocks = thinking + _blocks(m, request)
    for tc in m.tool_calls:
        if not tc.id:
            raise error(f"assistant tool call {tc.name!r} has no id (the next tool_result needs it)", request)
        blocks.append(
            {"type": "tool_use", "id": tc.id, "name": tc.name, "input": _tool_input(tc.arguments, tc.name, request)}
        )
    return {"role": "assistant", "content": blocks}


def _tool_result(m: Message, index: int, request: LMRequest) -> dict[str, Any]:
    if not m.tool_call_id:
        raise error(f"messages[{index}]: a 'tool' message needs tool_call_id (the tool_use id it answers)", request)
    content = _content(m, request)
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": content}
    state = (m.provider_state or {}).get(STATE_KEY)
    if isinstance(state, Mapping) and state.get("is_error") is True:
        block["is_error"] = True
    return block


def encode_messages(request: LMRequest) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """``(system, messages)`` for the body. Consecutive tool results share one user turn."""
    system: list[dict[str, Any]] = []
    plain_system = True  # every system block is bare text: send one string
    out: list[dict[str, Any]] = []
    tool_turn: list[dict[str, Any]] | None = None  # the content of the user turn holding tool results
    for i, m in enumerate(request.messages):
        role = m.role
        if m.name is not None and role != "tool":
            # The API has no participant names; a tool message's name is implied by its tool_use id.
            raise error(f"messages[{i}]: name={m.name!r}: Anthropic messages carry no name (drop it)", request)
        if role == "user":
            if tool_turn is not None:
                # Text after tool results goes in the same user turn, after them (tool-use docs).
                tool_turn.extend(_blocks(m, request))
                tool_turn = None
            else:
                content = m.content
                out.append({"role": "user", "content": content if isinstance(content, str) else _content(m, request)})
        elif role == "assistant":
            tool_turn = None
            out.append(_assistant(m, request))
        elif role == "tool":
            block = _tool_result(m, i, request)
            if tool_turn is None:
                tool_turn = [block]
                out.append({"role": "user", "content": tool_turn})
            else:
                tool_turn.append(block)
        else:  # system, developer
            content = m.content
            if isinstance(content, str):
                system.append({"type": "text", "text": content})
                continue
            for p in m.parts:
                if not isinstance(p, Text):
                    raise UnsupportedPartError(
                        f"messages[{i}]: the {request.provider or PROVIDER} system prompt takes text only, "
                        f"not a {p.kind} part",
                        provider=request.provider or PROVIDER,
                        model=request.model,
                    )
                plain_system = plain_system and not p.options
                system.append(_text_block(p))
    if not system:
        return None, out
    if plain_system:
        return "\n\n".join(b["text"] for b in system), out
    return system, out
