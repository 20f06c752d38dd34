"""The request body of ``POST /v1/messages``, sans-IO: parameters and options.

Everything follows the Messages API reference (https://docs.anthropic.com/en/api/messages);
messages and content blocks are :mod:`dsrs_anthropic.messages`. ``max_tokens`` is required: the
LM's, else :data:`dsrs.wire.DEFAULT_MAX_TOKENS` (the cap budget reservations also assume, so what
is reserved and what may be billed agree).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from dsrs.types import LMRequest, Tool
from dsrs.wire import DEFAULT_MAX_TOKENS
from dsrs_anthropic.messages import PROVIDER, STATE_KEY, encode_messages
from dsrs_anthropic.messages import error as _error

__all__ = [
    "API_VERSION",
    "OPTIONS",
    "PROVIDER",
    "STATE_KEY",
    "beta_header",
    "check_options",
    "encode_body",
    "native_structured_output",
    "output_tool_name",
]

#: The ``anthropic-version`` header value (https://docs.anthropic.com/en/api/versioning).
API_VERSION = "2023-06-01"

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


def native_structured_output(model: str) -> bool:
    """Whether ``model`` takes ``output_config.format`` (else the schema travels as a forced tool)."""
    return model.lower().startswith(_NATIVE_JSON_PREFIXES)


def output_tool_name(request: LMRequest) -> str | None:
    """The forced tool carrying a response format for a model without native JSON output, or ``None``."""
    rf = request.response_format
    if rf is None or (rf.type == "json_schema" and rf.schema is not None and native_structured_output(request.model)):
        return None
    return _FORCED_TOOL_PREFIX + (rf.name or "response")


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
