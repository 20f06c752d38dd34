"""The Gemini API wire (``models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse``), sans-IO.

Pure functions from an :class:`~dsrs.LMRequest` to the request body, and from response bytes to
an :class:`~dsrs.LMResponse` or a typed error. Shapes follow the Gemini API reference
(ai.google.dev/api/generate-content: ``GenerateContentRequest``, ``GenerationConfig``,
``ThinkingConfig``, ``FunctionDeclaration``, ``GenerateContentResponse``, ``UsageMetadata``) and the
troubleshooting guide's error table (ai.google.dev/gemini-api/docs/troubleshooting).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from dsrs import errors
from dsrs.plugins import ProviderFailure
from dsrs.types import LMRequest, LMResponse, LmUsage, Message, StreamChunk, ToolCall
from dsrs.wire import classify_by_status, parse_duration, retry_after_from_headers
from dsrs_google import schema as schemas

__all__ = [
    "BLOCKING_FINISH_REASONS",
    "Decoded",
    "DEFAULT_BASE_URL",
    "KNOWN_OPTIONS",
    "WIRE",
    "GeminiStreamDecoder",
    "classify",
    "decode_response",
    "encode_body",
    "generate_url",
    "models_url",
    "normalize_base_url",
    "parse_usage",
    "schema_mode",
]

WIRE = "gemini"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
#: finishReason values that mean the answer was withheld on policy grounds.
BLOCKING_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
)
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
#: LM options this provider maps (anything else is an error, never silently dropped).
KNOWN_OPTIONS = frozenset(
    {
        "top_p", "top_k", "presence_penalty", "frequency_penalty", "thinking_budget", "thinking_level",
        "include_thoughts", "thinking_config", "generation_config", "safety_settings", "tool_config",
        "cached_content", "schema_mode",
    }
)  # fmt: skip
_CAMEL = {
    "top_p": "topP",
    "top_k": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
#: Models that only take the OpenAPI-subset ``responseSchema``/``parameters`` (no JSON Schema fields).
_LEGACY_MODEL = re.compile(r"^(models/)?gemini-(pro|1\.0|1\.5|2\.0)(\b|-)")


# --- URLs -------------------------------------------------------------------------------------


def normalize_base_url(base_url: str) -> str:
    """A base URL with no path gets ``/v1beta`` (``https://host`` → ``https://host/v1beta``)."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1beta"
    return base


def _model_path(model: str) -> str:
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return quote(name, safe="/-._~")


def generate_url(base_url: str, model: str, *, stream: bool = False) -> str:
    if stream:
        return f"{base_url}/{_model_path(model)}:streamGenerateContent?alt=sse"
    return f"{base_url}/{_model_path(model)}:generateContent"


def models_url(base_url: str) -> str:
    return f"{base_url}/models?pageSize=1"


# --- request ----------------------------------------------------------------------------------


def schema_mode(model: str, options: Mapping[str, Any]) -> str:
    """``"json_schema"`` (``responseJsonSchema``) or ``"openapi"`` (``responseSchema``) for ``model``."""
    mode = options.get("schema_mode")
    if mode is not None:
        if mode not in ("json_schema", "openapi"):
            raise errors.InvalidRequestError(
                f"schema_mode must be 'json_schema' or 'openapi', got {mode!r}", provider="google", model=model
            )
        return str(mode)
    return "openapi" if _LEGACY_MODEL.match(model) else "json_schema"


def _bad(message: str, model: str) -> errors.InvalidRequestError:
    return errors.InvalidRequestError(message, provider="google", model=model)


def _args(call: ToolCall, model: str) -> Any:
    try:
        value = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        raise _bad(f"tool call {call.name!r} has arguments that are not JSON: {call.arguments[:80]!r}", model) from None
    if not isinstance(value, dict):
        raise _bad(f"tool call {call.name!r} arguments must be a JSON object", model)
    return value


def _function_response(content: str | None) -> dict[str, Any]:
    """A tool result as a ``functionResponse.response`` object (which must be a JSON object)."""
    text = content or ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def encode_contents(
    messages: tuple[Message, ...], model: str, signatures: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``contents`` and ``systemInstruction`` from chat messages.

    system/developer → ``systemInstruction``; assistant → role ``model`` with ``functionCall``
    parts; consecutive tool results → one ``user`` turn of ``functionResponse`` parts (Gemini wants
    the answers to parallel calls together). ``signatures`` maps tool-call ids to the
    ``thoughtSignature`` Gemini attached to them, which thinking models require back.
    """
    names = {tc.id: tc.name for m in messages for tc in m.tool_calls if tc.id}
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            if m.content:
                system.append({"text": m.content})
            continue
        if m.role == "tool":
            name = m.name or (names.get(m.tool_call_id) if m.tool_call_id else None)
            if not name:
                raise _bad(
                    "a tool result needs the function name: set Message(name=...) or keep the assistant message "
                    "with the matching tool call (tool_call_id) in the history",
                    model,
                )
            part = {"functionResponse": {"name": name, "response": _function_response(m.content)}}
            if contents and contents[-1]["role"] == "user" and "functionResponse" in contents[-1]["parts"][-1]:
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        role = "model" if m.role == "assistant" else "user"
        parts: list[dict[str, Any]] = []
        if m.content:
            parts.append({"text": m.content})
        for tc in m.tool_calls:
            call_part: dict[str, Any] = {"functionCall": {"name": tc.name, "args": _args(tc, model)}}
            signature = (signatures or {}).get(tc.id)
            if signature:
                call_part["thoughtSignature"] = signature
            parts.append(call_part)
        if not parts:
            parts.append({"text": ""})
        contents.append({"role": role, "parts": parts})
    if not contents:
        raise _bad("Gemini needs at least one user or assistant message besides the system instruction", model)
    return contents, ({"parts": system} if system else None)


def _option(options: Mapping[str, Any], name: str, kind: type | tuple[type, ...], model: str) -> Any:
    """An option's value, checked: bad types are an InvalidRequestError, not a traceback later."""
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        want = " or ".join(k.__name__ for k in kinds)
        raise _bad(f"option {name}={value!r} must be a {want}", model)
    return value


def _thinking(options: Mapping[str, Any], model: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(_option(options, "thinking_config", Mapping, model) or {})
    if (budget := _option(options, "thinking_budget", int, model)) is not None:
        config["thinkingBudget"] = budget
    if (level := _option(options, "thinking_level", str, model)) is not None:
        config["thinkingLevel"] = level
    if (include := _option(options, "include_thoughts", bool, model)) is not None:
        config["includeThoughts"] = include
    return config


def _tool_choice(choice: str | Mapping[str, Any] | None, model: str) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, Mapping):  # OpenAI style {"type": "function", "function": {"name": ...}}
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if not name:
            raise _bad(f"tool_choice {dict(choice)!r} names no function", model)
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [str(name)]}}
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}
    if choice.lower() in modes:
        return {"functionCallingConfig": {"mode": modes[choice.lower()]}}
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice]}}


def _no_parameters(params: Mapping[str, Any]) -> bool:
    """``{"type": "object", "properties": {}}``: Gemini wants the parameters left out instead."""
    if not params:
        return True
    return (
        params.get("type", "object") == "object"
        and not params.get("properties")
        and not params.get("required")
        and set(params) <= {"type", "properties", "required", "additionalProperties", "title", "description"}
    )


def encode_body(request: LMRequest, *, signatures: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON body of ``generateContent`` / ``streamGenerateContent`` (the same for both)."""
    model, options = request.model, request.options
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise _bad(
            f"unknown option(s) for the google provider: {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_OPTIONS))} "
            "(or pass generation_config={...} with Gemini's own field names)",
            model,
        )
    contents, system = encode_contents(request.messages, model, signatures)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    mode = schema_mode(model, options)
    if request.tools:
        declarations = []
        for t in request.tools:
            decl: dict[str, Any] = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            params = dict(t.parameters)
            if not _no_parameters(params):
                if mode == "json_schema":
                    decl["parametersJsonSchema"] = schemas.to_json_schema(params)
                else:
                    decl["parameters"] = schemas.to_openapi_schema(params)
            declarations.append(decl)
        body["tools"] = [{"functionDeclarations": declarations}]
    tool_config = _tool_choice(request.tool_choice, model) if request.tools else None
    if (raw_tool_config := _option(options, "tool_config", Mapping, model)) is not None:
        tool_config = dict(raw_tool_config)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    if (safety := _option(options, "safety_settings", (list, tuple), model)) is not None:
        body["safetySettings"] = list(safety)
    if (cached := _option(options, "cached_content", str, model)) is not None:
        body["cachedContent"] = cached
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.seed is not None:
        config["seed"] = request.seed
    if request.stop:
        config["stopSequences"] = list(request.stop)
    for key, camel in _CAMEL.items():
        if (value := _option(options, key, (int, float), model)) is not None:
            config[camel] = value
    thinking = _thinking(options, model)
    if thinking:
        config["thinkingConfig"] = thinking
    rf = request.response_format
    if rf is not None:
        config["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema is not None:
            if mode == "json_schema":
                config["responseJsonSchema"] = schemas.to_json_schema(rf.schema)
            else:
                config["responseSchema"] = schemas.to_openapi_schema(rf.schema)
    if (extra := _option(options, "generation_config", Mapping, model)) is not None:
        config.update(dict(extra))
    if config:
        body["generationConfig"] = config
    return body


# --- response ---------------------------------------------------------------------------------


def parse_usage(raw: Mapping[str, Any] | None) -> LmUsage:
    """Usage from ``usageMetadata``.

    ``promptTokenCount`` includes ``cachedContentTokenCount`` (cached → ``cached_tokens``);
    ``toolUsePromptTokenCount`` is input too and is added to the prompt; thoughts are output,
    billed as output, so ``completion_tokens`` = candidates + thoughts and ``reasoning_tokens`` =
    thoughts (dsrs counts reasoning inside completion, as the OpenAI wire does).
    """
    if not raw:
        return LmUsage.from_tokens(0, 0)
    prompt = int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0)
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    completion = int(raw.get("candidatesTokenCount") or 0) + thoughts
    total = raw.get("totalTokenCount")
    return LmUsage.from_tokens(
        prompt,
        completion,
        total_tokens=int(total) if total is not None else None,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _content_filter(
    message: str, *, model: str | None, body: bytes | str | None, code: str
) -> errors.ContentFilterError:
    return errors.ContentFilterError(message, provider="google", model=model, body=body, code=code)


def _check_prompt_feedback(data: Mapping[str, Any], model: str | None, body: bytes | str) -> None:
    feedback = data.get("promptFeedback")
    if isinstance(feedback, Mapping) and feedback.get("blockReason"):
        reason = str(feedback["blockReason"])
        raise _content_filter(f"Gemini blocked the prompt (blockReason {reason})", model=model, body=body, code=reason)


def _finish_reason(raw: str | None, has_calls: bool) -> str | None:
    if raw is None:
        return None
    if has_calls and raw == "STOP":
        return "tool_calls"
    return _FINISH.get(raw, raw.lower())


@dataclass
class _Parts:
    text: list[str]
    reasoning: list[str]
    calls: list[ToolCall]
    signatures: dict[str, str]


def _read_parts(candidate: Mapping[str, Any], acc: _Parts) -> tuple[str, str]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    text: list[str] = []
    reasoning: list[str] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, Mapping):
            continue
        if "functionCall" in part and isinstance(part["functionCall"], Mapping):
            fc = part["functionCall"]
            call_id = str(fc.get("id") or f"call_{uuid.uuid4().hex[:16]}")
            args = fc.get("args")
            arguments = json.dumps(args if args is not None else {}, separators=(",", ":"), ensure_ascii=False)
            acc.calls.append(ToolCall(id=call_id, name=str(fc.get("name") or ""), arguments=arguments))
            if part.get("thoughtSignature"):
                acc.signatures[call_id] = str(part["thoughtSignature"])
        elif isinstance(part.get("text"), str):
            (reasoning if part.get("thought") is True else text).append(part["text"])
    acc.text.extend(text)
    acc.reasoning.extend(reasoning)
    return "".join(text), "".join(reasoning)


def _check_finish(raw: str | None, model: str | None, body: bytes | str) -> None:
    if raw in BLOCKING_FINISH_REASONS:
        raise _content_filter(f"Gemini withheld the answer (finishReason {raw})", model=model, body=body, code=str(raw))
    if raw == "MALFORMED_FUNCTION_CALL":
        raise errors.ResponseParseError(
            "Gemini produced a malformed function call (finishReason MALFORMED_FUNCTION_CALL)",
            provider="google",
            model=model,
            body=body,
            code=raw,
        )


def _parse_error(
    message: str, *, model: str | None, body: bytes | str, status: int | None
) -> errors.ResponseParseError:
    return errors.ResponseParseError(message, provider="google", model=model, status=status, body=body)


def _load(body: bytes | str, model: str | None, status: int | None) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raw = body.encode() if isinstance(body, str) else body
        kind = "HTML" if raw.lstrip()[:1] == b"<" else "non-JSON"
        raise _parse_error(
            f"{kind} body where a Gemini response was expected", model=model, body=body, status=status
        ) from None
    if not isinstance(data, dict):
        raise _parse_error("Gemini response is not a JSON object", model=model, body=body, status=status)
    if "error" in data and "candidates" not in data:
        raw = body.encode() if isinstance(body, str) else body
        err = classify(ProviderFailure("google", model, status, {}, raw, wire=WIRE))
        raise err or _parse_error("error object in a 2xx body", model=model, body=body, status=status)
    return data


@dataclass(frozen=True)
class Decoded:
    """A decoded response plus the thought signatures of its function calls."""

    response: LMResponse
    signatures: Mapping[str, str]


def decode_response(status: int, body: bytes, *, model: str | None = None) -> Decoded:
    """Decode a 2xx ``generateContent`` body."""
    data = _load(body, model, status)
    _check_prompt_feedback(data, model, body)
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], Mapping):
        raise _parse_error("Gemini response has no candidates", model=model, body=body, status=status)
    candidate = candidates[0]
    acc = _Parts([], [], [], {})
    _read_parts(candidate, acc)
    raw_finish = candidate.get("finishReason")
    _check_finish(raw_finish, model, body)
    raw_usage = data.get("usageMetadata") if isinstance(data.get("usageMetadata"), Mapping) else None
    response = LMResponse(
        text="".join(acc.text),
        usage=parse_usage(raw_usage),
        tool_calls=tuple(acc.calls),
        reasoning="".join(acc.reasoning) or None,
        finish_reason=_finish_reason(raw_finish, bool(acc.calls)),
        raw_usage=raw_usage,
        provider="google",
        model=data.get("modelVersion") or model,
    )
    return Decoded(response, acc.signatures)


class GeminiStreamDecoder:
    """Turn the SSE ``data:`` payloads of ``streamGenerateContent?alt=sse`` into chunks.

    Each event is a whole ``GenerateContentResponse`` carrying the next parts; ``usageMetadata``
    is cumulative (the last one counts) and the last candidate carries ``finishReason``. The
    stream has no terminator, so a stream that ends before any ``finishReason`` was cut short.
    """

    def __init__(self, *, model: str | None = None) -> None:
        self.model = model
        self._acc = _Parts([], [], [], {})
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._model_version: str | None = None

    @property
    def signatures(self) -> Mapping[str, str]:
        return self._acc.signatures

    def feed(self, data: str) -> StreamChunk | None:
        if not data.strip():
            return None
        obj = _load(data, self.model, None)
        _check_prompt_feedback(obj, self.model, data)
        if isinstance(obj.get("usageMetadata"), Mapping):
            self._usage = obj["usageMetadata"]
        if obj.get("modelVersion"):
            self._model_version = str(obj["modelVersion"])
        candidates = obj.get("candidates")
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], Mapping):
            return None
        candidate = candidates[0]
        text, reasoning = _read_parts(candidate, self._acc)
        if candidate.get("finishReason"):
            self._finish = str(candidate["finishReason"])
            _check_finish(self._finish, self.model, data)
        return StreamChunk(text=text, reasoning=reasoning) if (text or reasoning) else None

    def finish(self) -> LMResponse:
        if self._finish is None:
            raise _parse_error(
                "the Gemini stream ended before a finishReason (cut short)", model=self.model, body="", status=None
            )
        return LMResponse(
            text="".join(self._acc.text),
            usage=parse_usage(self._usage),
            tool_calls=tuple(self._acc.calls),
            reasoning="".join(self._acc.reasoning) or None,
            finish_reason=_finish_reason(self._finish, bool(self._acc.calls)),
            raw_usage=self._usage,
            provider="google",
            model=self._model_version or self.model,
        )


# --- errors -----------------------------------------------------------------------------------

_RPC = "type.googleapis.com/google.rpc."
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_INVALID"})
# The one token-limit answer Gemini gives has no structured field: it is an INVALID_ARGUMENT whose
# own message (server text, not an echo of the prompt) is exactly this sentence. Matched anchored,
# on error.message only, so a prompt quoting it inside another message cannot trigger it.
_TOKEN_LIMIT = re.compile(r"^The input token count \(\d+\) exceeds the maximum number of tokens allowed \(\d+\)\.?$")
_UNAVAILABLE = frozenset({"UNAVAILABLE", "INTERNAL", "UNKNOWN", "DATA_LOSS"})


def error_object(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of a Google API error body (``{"error": {...}}``, or a one-item list of it)."""
    try:
        data = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # streamGenerateContent without alt=sse answers errors as a JSON array
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return None
    return data["error"]  # type: ignore[no-any-return]


def _details(err: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    return [d for d in err.get("details") or () if isinstance(d, Mapping) and d.get("@type") == _RPC + kind]


def retry_delay(err: Mapping[str, Any]) -> float | None:
    """Seconds from ``google.rpc.RetryInfo.retryDelay`` (``"37s"``, ``"0.5s"``)."""
    for info in _details(err, "RetryInfo"):
        delay = info.get("retryDelay")
        if isinstance(delay, str):
            seconds = parse_duration(delay)
            if seconds is not None:
                return seconds
        elif isinstance(delay, Mapping):  # the proto form {"seconds": 37, "nanos": 0}
            return float(delay.get("seconds") or 0) + float(delay.get("nanos") or 0) / 1e9
    return None


def quota_spent(err: Mapping[str, Any]) -> bool:
    """Does a ``google.rpc.QuotaFailure`` name a quota that waiting a minute will not refill?

    Per-day quotas (``...PerDay...`` in ``quotaId``/``quotaMetric``) and quotas whose limit is 0 (a
    model not open to this project's tier) are spent; per-minute ones are rate limits.
    """
    for failure in _details(err, "QuotaFailure"):
        for v in failure.get("violations") or ():
            if not isinstance(v, Mapping):
                continue
            ident = f"{v.get('quotaId', '')} {v.get('quotaMetric', '')}".lower()
            if "perday" in ident or "per_day" in ident or "daily" in ident or str(v.get("quotaValue")) == "0":
                return True
    return False


def _reasons(err: Mapping[str, Any]) -> set[str]:
    return {str(d.get("reason")) for d in _details(err, "ErrorInfo") if d.get("reason")}


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """Classify a Gemini error from ``error.status`` and ``error.details``, then the HTTP status."""
    if failure.exception is not None:
        return None
    if failure.status is None and not failure.body:
        return None
    err = error_object(failure.body)
    kw: dict[str, Any] = dict(
        provider=failure.provider, model=failure.model, body=failure.body, secrets=failure.secrets
    )
    if err is None:
        if failure.status is None or 200 <= failure.status < 300:
            return None
        if failure.status < 500 and failure.body.lstrip()[:1] == b"<":
            return errors.ResponseParseError(f"HTML body with HTTP {failure.status}", status=failure.status, **kw)
        return classify_by_status(failure)
    status_name = str(err.get("status") or "")
    http = (
        failure.status
        if failure.status is not None
        else (int(err["code"]) if isinstance(err.get("code"), int) else None)
    )
    message = str(err.get("message") or "") or None
    kw.update(status=http, code=status_name or None)
    reasons = _reasons(err)
    if reasons & _AUTH_REASONS or status_name == "UNAUTHENTICATED" or http == 401:
        return errors.AuthenticationError(message or "the API key was rejected", **kw)
    if status_name == "RESOURCE_EXHAUSTED" or http == 429:
        delay = retry_delay(err)
        if delay is None:
            delay = retry_after_from_headers(failure.headers)
        if quota_spent(err):
            return errors.QuotaExceededError(message or "quota exhausted", retry_after=delay, **kw)
        return errors.RateLimitError(message or "rate limited", retry_after=delay, **kw)
    if status_name == "PERMISSION_DENIED" or http == 403:
        return errors.PermissionDeniedError(message or "permission denied", **kw)
    if status_name == "FAILED_PRECONDITION":
        # e.g. "Gemini API free tier is not available in your country. Please enable billing ..."
        return errors.PermissionDeniedError(message or "failed precondition (billing or region)", **kw)
    if status_name == "NOT_FOUND" or http == 404:
        what = f"unknown model {failure.model!r}" if failure.model else "not found"
        detail = f" ({message.rstrip('.')})" if message else ""
        return errors.InvalidRequestError(f"{what}{detail} — GET models lists the models your key can use", **kw)
    if status_name == "INVALID_ARGUMENT" or status_name == "OUT_OF_RANGE" or http == 400:
        if message and _TOKEN_LIMIT.match(message):
            return errors.ContextWindowExceededError(message, **kw)
        return errors.InvalidRequestError(message or "invalid request", **kw)
    if status_name == "DEADLINE_EXCEEDED" or http == 504:
        return errors.LMTimeoutError(message or "Gemini timed out", **kw)
    if status_name in _UNAVAILABLE or (http is not None and http >= 500):
        return errors.ProviderUnavailableError(
            message or "Gemini is unavailable",
            retry_after=retry_delay(err) or retry_after_from_headers(failure.headers),
            **kw,
        )
    if http is None:
        return errors.ProviderUnavailableError(message or "error event in the Gemini stream", **kw)
    sub = ProviderFailure(
        failure.provider, failure.model, http, failure.headers, failure.body, message=message, secrets=failure.secrets
    )
    return classify_by_status(sub)
