"""The request body of ``POST /v1/messages``, sans-IO: messages, content blocks, parameters, options.

Everything follows the Messages API reference (https://docs.anthropic.com/en/api/messages):

* ``system`` is a top-level field (a string, or text blocks when a block carries ``cache_control``);
  there is no system role. dsrs ``system``/``developer`` messages are gathered into it, in order.
* ``max_tokens`` is required: the LM's, else :data:`dsrs.wire.DEFAULT_MAX_TOKENS` (the cap budget
  reservations also assume, so what is reserved and what may be billed agree).
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

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from dsrs.errors import InvalidRequestError
from dsrs.types import File, Image, LMRequest, Message, Part, Text, Tool, UnsupportedPartError
from dsrs.wire import DEFAULT_MAX_TOKENS

__all__ = [
    "API_VERSION",
    "OPTIONS",
    "STATE_KEY",
    "encode_body",
    "encode_messages",
    "native_structured_output",
    "output_tool_name",
]

#: The ``anthropic-version`` header value (https://docs.anthropic.com/en/api/versioning).
API_VERSION = "2023-06-01"
#: The key of this wire's data in ``Message.provider_state`` / ``LMResponse.provider_state``.
STATE_KEY = "anthropic"
PROVIDER = "anthropic"

#: Provider options (``LM(..., top_k=40)`` or per call) and what each is. Every other key is refused
#: with the closest match, so a typo never silently changes nothing.
OPTIONS: Mapping[str, str] = {
    "top_p": "nucleus sampling, 0..1",
    "top_k": "sample from the top K tokens, an int >= 1",
    "metadata": "request metadata, e.g. {'user_id': '...'}",
    "thinking": "extended thinking: a budget in tokens (int >= 1024), True, or the API's object",
    "service_tier": "'auto' or 'standard_only'",
    "output_config": "the API's output_config object (e.g. {'effort': 'high'}), merged",
    "disable_parallel_tool_use": "bool: at most one tool_use block per turn",
    "anthropic_beta": "beta feature names for the anthropic-beta header (str or list of str)",
    "extra_body": "a dict merged into the request body as is (documented passthrough)",
}

#: The documented ``budget_tokens`` minimum (extended thinking).
MIN_THINKING_BUDGET = 1024
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DOCUMENT_OPTIONS = ("title", "context", "citations")
_FORCED_TOOL_PREFIX = "json_output_"

# Models with native JSON outputs (``output_config.format``); older ones get the schema as a forced
# tool. Structured outputs are generally available for Claude Opus 4.5+, Sonnet 4.5+ and Haiku 4.5
# (https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs).
_NATIVE_JSON_PREFIXES = (
    "claude-opus-4-5",
    "claude-opus-4-6",
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-haiku-5",
)


def _error(message: str, request: LMRequest) -> InvalidRequestError:
    return InvalidRequestError(message, provider=request.provider or PROVIDER, model=request.model)


def native_structured_output(model: str) -> bool:
    """Whether ``model`` takes ``output_config.format`` (else the schema travels as a forced tool)."""
    return model.lower().startswith(_NATIVE_JSON_PREFIXES)


def output_tool_name(request: LMRequest) -> str | None:
    """The forced tool carrying a response format for a model without native JSON output, or ``None``."""
    rf = request.response_format
    if rf is None or (rf.type == "json_schema" and rf.schema is not None and native_structured_output(request.model)):
        return None
    return _FORCED_TOOL_PREFIX + (rf.name or "response")


# --- content ---------------------------------------------------------------------------------


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
        raise _error(f"tool call {name!r}: arguments are not JSON: {arguments[:80]!r}", request) from None
    if not isinstance(value, dict):
        raise _error(f"tool call {name!r}: arguments must be a JSON object, got {type(value).__name__}", request)
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
            raise _error(f"assistant tool call {tc.name!r} has no id (the next tool_result needs it)", request)
        blocks.append(
            {"type": "tool_use", "id": tc.id, "name": tc.name, "input": _tool_input(tc.arguments, tc.name, request)}
        )
    return {"role": "assistant", "content": blocks}


def _tool_result(m: Message, index: int, request: LMRequest) -> dict[str, Any]:
    if not m.tool_call_id:
        raise _error(f"messages[{index}]: a 'tool' message needs tool_call_id (the tool_use id it answers)", request)
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


# --- parameters and options ------------------------------------------------------------------


def check_options(request: LMRequest) -> None:
    """Refuse unknown provider options (closest match named) and options of the wrong type."""
    for key, value in request.options.items():
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, list(OPTIONS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(OPTIONS))}"
            raise _error(f"unknown option {key!r}={value!r} for the Anthropic Messages API{hint}", request)
    top_p = request.options.get("top_p")
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 <= top_p <= 1 or math.isnan(top_p)
    ):
        raise _error(f"top_p must be a number in [0, 1], got {top_p!r}", request)
    top_k = request.options.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise _error(f"top_k must be an int >= 1, got {top_k!r}", request)
    for key in ("metadata", "output_config", "extra_body"):
        value = request.options.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise _error(f"{key} must be a dict, got {type(value).__name__}", request)
    beta = request.options.get("anthropic_beta")
    if beta is not None and not (
        isinstance(beta, str) or (isinstance(beta, (list, tuple)) and all(isinstance(b, str) for b in beta))
    ):
        raise _error(f"anthropic_beta must be a str or a list of str, got {beta!r}", request)


def _thinking(request: LMRequest, max_tokens: int) -> dict[str, Any] | None:
    value = request.options.get("thinking")
    if value is None or value is False:
        return None
    if value is True:
        thinking: dict[str, Any] = {"type": "enabled", "budget_tokens": min(MIN_THINKING_BUDGET * 2, max_tokens - 1)}
    elif isinstance(value, int) and not isinstance(value, bool):
        thinking = {"type": "enabled", "budget_tokens": value}
    elif isinstance(value, Mapping):
        thinking = dict(value)
    else:
        raise _error(f"thinking must be a budget in tokens (int), True, or a dict; got {value!r}", request)
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled":
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            raise _error(f"thinking budget_tokens must be an int >= {MIN_THINKING_BUDGET}, got {budget!r}", request)
        if budget >= max_tokens:
            raise _error(
                f"thinking budget_tokens ({budget}) must be below max_tokens ({max_tokens}): "
                "raise max_tokens (LM(..., max_tokens=...)) or lower the budget",
                request,
            )
    return thinking


def _tool_choice(request: LMRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice == "auto":
            return {"type": "auto"}
        if choice == "none":
            return {"type": "none"}
        if choice in ("required", "any"):
            return {"type": "any"}
        return {"type": "tool", "name": choice}
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        if choice.get("type") == "function" and isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}  # the OpenAI shape
        return dict(choice)
    raise _error(f"tool_choice must be a str or a dict, got {type(choice).__name__}", request)


def _tool(t: Tool) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
    strict = getattr(t, "strict", None)  # dsrs-core 0.1.0 Tools may have no ``strict``
    if strict is not None:
        tool["strict"] = bool(strict)  # strict tool use (structured outputs)
    return tool


def _sampling(request: LMRequest, body: dict[str, Any], thinking: dict[str, Any] | None) -> None:
    """temperature, stop_sequences and the sampling options, checked against extended thinking."""
    opts = request.options
    enabled = thinking is not None and thinking.get("type") == "enabled"
    if request.temperature is not None:
        t = request.temperature
        if not 0 <= t <= 1:
            raise _error(f"temperature must be in [0, 1] for the Anthropic Messages API, got {t!r}", request)
        if enabled and t != 1:
            raise _error(f"temperature={t!r} cannot be combined with extended thinking (the API refuses it)", request)
        body["temperature"] = t
    if request.seed is not None:
        raise _error(f"seed={request.seed!r}: the Anthropic Messages API has no seed parameter", request)
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    for key in ("top_p", "top_k", "metadata", "service_tier"):
        value = opts.get(key)
        if value is not None:
            body[key] = dict(value) if isinstance(value, Mapping) else value
    if enabled:
        # Extended thinking refuses top_k and a top_p below 0.95 (extended-thinking docs).
        if opts.get("top_k") is not None:
            raise _error(
                f"top_k={opts['top_k']!r} cannot be combined with extended thinking (the API refuses it)", request
            )
        if opts.get("top_p") is not None and opts["top_p"] < 0.95:
            raise _error(f"top_p={opts['top_p']!r} with extended thinking must be in [0.95, 1]", request)
    if thinking is not None:
        body["thinking"] = thinking


def _tools_and_format(request: LMRequest, body: dict[str, Any], thinking: dict[str, Any] | None) -> None:
    """tools, tool_choice and the response format (``output_config.format`` or a forced tool)."""
    opts = request.options
    enabled = thinking is not None and thinking.get("type") == "enabled"
    tools = [_tool(t) for t in request.tools]
    if request.tool_choice is not None and not request.tools:
        raise _error(f"tool_choice={request.tool_choice!r} needs tools= (none were given)", request)
    tool_choice = _tool_choice(request)
    output_config = dict(opts.get("output_config") or {})
    rf = request.response_format
    forced = output_tool_name(request)
    if rf is not None and forced is None:
        assert rf.schema is not None
        output_config["format"] = {"type": "json_schema", "schema": dict(rf.schema)}
    elif rf is not None and forced is not None:
        if enabled:
            raise _error(
                f"{request.model!r} has no native structured output, and a forced tool (how it gets a schema) "
                "cannot be combined with extended thinking: drop thinking or response_format",
                request,
            )
        schema = dict(rf.schema) if rf.type == "json_schema" and rf.schema is not None else {"type": "object"}
        tools.append(
            {"name": forced, "description": "Reply by calling this tool with the answer.", "input_schema": schema}
        )
        tool_choice = {"type": "tool", "name": forced}
    if opts.get("disable_parallel_tool_use") is not None and tools:
        parallel = {"disable_parallel_tool_use": bool(opts["disable_parallel_tool_use"])}
        tool_choice = {**(tool_choice or {"type": "auto"}), **parallel}
    if enabled and tool_choice is not None and tool_choice.get("type") in ("any", "tool"):
        raise _error(
            f"tool_choice={request.tool_choice!r} forces a tool, which extended thinking does not allow "
            "(use 'auto' or 'none')",
            request,
        )
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if output_config:
        body["output_config"] = output_config


def encode_body(request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
    """The JSON body for ``POST /v1/messages``. Every parameter is mapped explicitly."""
    check_options(request)
    max_tokens = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
    system, messages = encode_messages(request)
    if not messages:
        raise _error(
            "the Messages API needs at least one user or assistant message (got only a system prompt)", request
        )
    body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens, "messages": messages}
    if system is not None:
        body["system"] = system
    thinking = _thinking(request, max_tokens)
    _sampling(request, body, thinking)
    _tools_and_format(request, body, thinking)
    extra = request.options.get("extra_body")
    if extra:
        body.update(extra)
    if stream:
        body["stream"] = True
    return body


def beta_header(request: LMRequest) -> str | None:
    """The ``anthropic-beta`` header value for this request, or ``None``."""
    beta = request.options.get("anthropic_beta")
    if not beta:
        return None
    return beta if isinstance(beta, str) else ",".join(beta)
