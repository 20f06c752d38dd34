"""The Gemini API wire (``models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse``), sans-IO.

Pure functions from an :class:`~dsrs.LMRequest` to the request body, and from response bytes to
an :class:`~dsrs.LMResponse` or a typed error. Shapes follow the Gemini API reference
(ai.google.dev/api/generate-content: ``GenerateContentRequest``, ``GenerationConfig``,
``ThinkingConfig``, ``FunctionDeclaration``, ``GenerateContentResponse``, ``UsageMetadata``) and the
troubleshooting guide's error table (ai.google.dev/gemini-api/docs/troubleshooting).
"""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from dsrs import errors
from dsrs.plugins import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import (
    LMRequest,
    LMResponse,
    LmUsage,
    Media,
    Message,
    Part,
    StreamChunk,
    Text,
    ToolCall,
    UnsupportedPartError,
)
from dsrs.wire import Endpoint, SSEEvent, StreamFormat, classify_by_status, parse_duration, retry_after_from_headers
from dsrs.wire.openai_chat import redact_error
from dsrs_google import schema as schemas

__all__ = [
    "BLOCKING_FINISH_REASONS",
    "DEFAULT_BASE_URL",
    "MAX_INLINE_BYTES",
    "GeminiCodec",
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
    "state_of",
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
        "cached_content", "schema_mode", "media_resolution",
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
#: Inline data (``inlineData``) in one request: the API takes at most 20 MB per request ("Image
#: understanding" / "Document understanding" guides); larger media go through the Files API
#: and are sent as ``fileData`` URIs (``dsrs.File.from_url("https://generativelanguage...")``).
MAX_INLINE_BYTES = 20 * 1024 * 1024


# --- URLs -------------------------------------------------------------------------------------


def normalize_base_url(base_url: str) -> str:
    """A base URL with no path gets ``/v1beta`` (``https://host`` → ``https://host/v1beta``)."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1beta"
    return base


@lru_cache(maxsize=256)  # on every request (quote() is slow)
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


def _function_response(content: str) -> dict[str, Any]:
    """A tool result as a ``functionResponse.response`` object (which must be a JSON object)."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"result": content}


def state_of(m: Message) -> Mapping[str, Any]:
    """What this wire attached to an assistant message (``provider_state["gemini"]``), or ``{}``:
    ``thought_signatures`` (tool-call id → the ``thoughtSignature`` thinking models want back)
    and ``call_ids`` (the ids Gemini itself gave its function calls, sent back with them)."""
    state = m.provider_state.get(WIRE) if m.provider_state else None
    return state if isinstance(state, Mapping) else {}


def _refuse(part: Part | Media, model: str, why: str) -> UnsupportedPartError:
    return UnsupportedPartError(
        f"the google provider cannot send this {type(part).__name__} part here: {why}", provider="google", model=model
    )


def _media_part(part: Media, model: str) -> dict[str, Any]:
    """``inlineData`` (base64 bytes) or ``fileData`` (a URI the API fetches), API reference "Part"."""
    mime = part.media_type
    if mime.endswith("/*"):
        raise _refuse(part, model, f"Gemini needs the exact media type, not {mime!r}: pass media_type=")
    if part.data is not None:
        return {"inlineData": {"mimeType": mime, "data": part.base64()}}
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _text_of(m: Message, model: str, where: str) -> str:
    for part in m.parts:
        if not isinstance(part, Text):
            raise _refuse(part, model, f"{where} takes text only")
    return m.text


def _content_parts(m: Message, model: str) -> list[dict[str, Any]]:
    if m.content is None:
        return []
    if isinstance(m.content, str):
        return [{"text": m.content}] if m.content else []
    return [{"text": p.text} if isinstance(p, Text) else _media_part(p, model) for p in m.content]


def encode_contents(messages: tuple[Message, ...], model: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``contents`` and ``systemInstruction`` from chat messages.

    system/developer → ``systemInstruction`` (text only); user turns → ``text``, ``inlineData`` and
    ``fileData`` parts; assistant → role ``model`` with ``functionCall`` parts (with Gemini's
    own call ``id`` and ``thoughtSignature`` from the message's provider state); consecutive tool
    results → one ``user`` turn of ``functionResponse`` parts (Gemini wants the answers to
    parallel calls together), each with the call's ``id`` when Gemini gave one.
    """
    names = {tc.id: tc.name for m in messages for tc in m.tool_calls if tc.id}
    own_ids = {str(i) for m in messages if m.role == "assistant" for i in state_of(m).get("call_ids") or ()}
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    inline = 0
    for m in messages:
        if m.role in ("system", "developer"):
            text = _text_of(m, model, "the system instruction")
            if text:
                system.append({"text": text})
            continue
        if m.role == "tool":
            name = m.name or (names.get(m.tool_call_id) if m.tool_call_id else None)
            if not name:
                raise _bad(
                    "a tool result needs the function name: set Message(name=...) or keep the assistant message "
                    "with the matching tool call (tool_call_id) in the history",
                    model,
                )
            reply: dict[str, Any] = {"name": name, "response": _function_response(_text_of(m, model, "a tool result"))}
            if m.tool_call_id and m.tool_call_id in own_ids:
                reply = {"id": m.tool_call_id, **reply}
            part = {"functionResponse": reply}
            if contents and contents[-1]["role"] == "user" and "functionResponse" in contents[-1]["parts"][-1]:
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        role = "model" if m.role == "assistant" else "user"
        parts = _content_parts(m, model)
        # counted as sent: base64 (4 bytes per 3), which is what the request limit applies to
        inline += sum((len(p.data) + 2) // 3 * 4 for p in m.parts if isinstance(p, Media) and p.data is not None)
        if m.tool_calls:
            signatures = state_of(m).get("thought_signatures") or {}
            for tc in m.tool_calls:
                call: dict[str, Any] = {"name": tc.name, "args": _args(tc, model)}
                if tc.id and tc.id in own_ids:
                    call = {"id": tc.id, **call}
                call_part: dict[str, Any] = {"functionCall": call}
                signature = signatures.get(tc.id) if isinstance(signatures, Mapping) else None
                if isinstance(signature, str) and signature:
                    call_part["thoughtSignature"] = signature
                parts.append(call_part)
        if not parts:
            parts.append({"text": ""})
        contents.append({"role": role, "parts": parts})
    if inline > MAX_INLINE_BYTES:
        raise UnsupportedPartError(
            f"the google provider cannot send {inline} bytes of inline (base64) media in one request (the API takes "
            f"{MAX_INLINE_BYTES}); upload large files with the Files API and pass their URI (File.from_url)",
            provider="google",
            model=model,
        )
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


def encode_body(request: LMRequest) -> dict[str, Any]:
    """The JSON body of ``generateContent`` / ``streamGenerateContent`` (the same for both)."""
    model, options = request.model, request.options
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(KNOWN_OPTIONS), n=1, cutoff=0.6)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise _bad(
            f"unknown option(s) for the google provider: {', '.join(hints)}; known: {', '.join(sorted(KNOWN_OPTIONS))} "
            "(or pass generation_config={...} with Gemini's own field names)",
            model,
        )
    contents, system = encode_contents(request.messages, model)
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
    if (resolution := _option(options, "media_resolution", str, model)) is not None:
        # GenerationConfig.mediaResolution: how many tokens an image or video frame costs
        config["mediaResolution"] = resolution
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
    prompt = _tokens(raw, "promptTokenCount") + _tokens(raw, "toolUsePromptTokenCount")
    thoughts = _tokens(raw, "thoughtsTokenCount")
    completion = _tokens(raw, "candidatesTokenCount") + thoughts
    return LmUsage.from_tokens(
        prompt,
        completion,
        total_tokens=_tokens(raw, "totalTokenCount") if raw.get("totalTokenCount") is not None else None,
        cached_tokens=_tokens(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _tokens(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _BadShape(f"usageMetadata.{key} is not a token count: {value!r}"[:120])
    return int(value)


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
    ids: list[str]

    def state(self) -> dict[str, Any] | None:
        """``provider_state`` for the answer: what the next turn must send back (see :func:`state_of`)."""
        state: dict[str, Any] = {}
        if self.signatures:
            state["thought_signatures"] = dict(self.signatures)
        if self.ids:
            state["call_ids"] = list(self.ids)
        return {WIRE: state} if state else None


class _BadShape(ValueError):
    """A 2xx body whose fields have the wrong types (turned into a ResponseParseError)."""


def _read_parts(candidate: Mapping[str, Any], acc: _Parts) -> tuple[str, str]:
    content = candidate.get("content")
    if content is not None and not isinstance(content, Mapping):
        raise _BadShape(f"candidate content is a {type(content).__name__}, not an object")
    parts = content.get("parts") if content is not None else None
    if parts is not None and not isinstance(parts, list):
        raise _BadShape(f"content.parts is a {type(parts).__name__}, not a list")
    text: list[str] = []
    reasoning: list[str] = []
    for part in parts or ():
        if not isinstance(part, Mapping):
            raise _BadShape(f"a part is a {type(part).__name__}, not an object")
        if "functionCall" in part:
            fc = part["functionCall"]
            if not isinstance(fc, Mapping) or not isinstance(fc.get("name"), str) or not fc["name"]:
                raise _BadShape("functionCall is not an object with a name")
            args = fc.get("args")
            if args is not None and not isinstance(args, Mapping):
                raise _BadShape(f"functionCall.args is a {type(args).__name__}, not an object")
            own = fc.get("id")
            call_id = str(own) if own else f"call_{uuid.uuid4().hex[:16]}"
            if own:
                acc.ids.append(call_id)
            arguments = json.dumps(args if args is not None else {}, separators=(",", ":"), ensure_ascii=False)
            acc.calls.append(ToolCall(id=call_id, name=fc["name"], arguments=arguments))
            if part.get("thoughtSignature"):
                acc.signatures[call_id] = str(part["thoughtSignature"])
        elif "text" in part:
            if not isinstance(part["text"], str):
                raise _BadShape(f"a text part holds a {type(part['text']).__name__}, not a str")
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


def decode_response(status: int, body: bytes, *, model: str | None = None) -> LMResponse:
    """Decode a 2xx ``generateContent`` body; the function calls' ids and thought signatures
    travel in ``provider_state`` (and so with :meth:`~dsrs.LMResponse.message`)."""
    data = _load(body, model, status)
    _check_prompt_feedback(data, model, body)
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], Mapping):
        raise _parse_error("Gemini response has no candidates", model=model, body=body, status=status)
    candidate = candidates[0]
    acc = _Parts([], [], [], {}, [])
    try:
        _read_parts(candidate, acc)
        raw_usage = data.get("usageMetadata")
        if raw_usage is not None and not isinstance(raw_usage, Mapping):
            raise _BadShape(f"usageMetadata is a {type(raw_usage).__name__}, not an object")
        usage = parse_usage(raw_usage)
    except _BadShape as exc:
        raise _parse_error(f"unexpected Gemini response shape: {exc}", model=model, body=body, status=status) from None
    raw_finish = candidate.get("finishReason")
    if raw_finish is not None and not isinstance(raw_finish, str):
        raise _parse_error(f"finishReason is a {type(raw_finish).__name__}", model=model, body=body, status=status)
    _check_finish(raw_finish, model, body)
    version = data.get("modelVersion")
    return LMResponse(
        text="".join(acc.text),
        usage=usage,
        tool_calls=tuple(acc.calls),
        reasoning="".join(acc.reasoning) or None,
        finish_reason=_finish_reason(raw_finish, bool(acc.calls)),
        raw_usage=raw_usage,
        provider="google",
        model=version if isinstance(version, str) and version else model,
        provider_state=acc.state(),
    )


class GeminiStreamDecoder:
    """Turn the SSE ``data:`` payloads of ``streamGenerateContent?alt=sse`` into chunks.

    Each event is a whole ``GenerateContentResponse`` carrying the next parts; ``usageMetadata``
    is cumulative (the last one counts) and the last candidate carries ``finishReason``. The
    stream has no terminator, so a stream that ends before any ``finishReason`` was cut short.
    """

    def __init__(self, *, model: str | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.model = model
        self.secrets = secrets
        self._acc = _Parts([], [], [], {}, [])
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._model_version: str | None = None

    def feed(self, data: str | SSEEvent) -> StreamChunk | None:
        if isinstance(data, SSEEvent):
            data = data.data
        try:
            return self._event(data)
        except errors.LMError as exc:
            raise redact_error(exc, self.secrets) from None

    def _event(self, data: str) -> StreamChunk | None:
        if not data.strip():
            return None
        obj = _load(data, self.model, None)
        _check_prompt_feedback(obj, self.model, data)
        try:
            return self._feed(obj, data)
        except _BadShape as exc:
            raise _parse_error(
                f"unexpected Gemini stream event shape: {exc}", model=self.model, body=data, status=None
            ) from None

    def _feed(self, obj: Mapping[str, Any], data: str) -> StreamChunk | None:
        usage = obj.get("usageMetadata")
        if usage is not None:
            if not isinstance(usage, Mapping):
                raise _BadShape(f"usageMetadata is a {type(usage).__name__}, not an object")
            parse_usage(usage)  # checked now, so a bad count fails on its own event
            self._usage = usage
        if isinstance(obj.get("modelVersion"), str) and obj["modelVersion"]:
            self._model_version = obj["modelVersion"]
        candidates = obj.get("candidates")
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], Mapping):
            return None
        candidate = candidates[0]
        text, reasoning = _read_parts(candidate, self._acc)
        if candidate.get("finishReason"):
            if not isinstance(candidate["finishReason"], str):
                raise _BadShape(f"finishReason is a {type(candidate['finishReason']).__name__}")
            self._finish = candidate["finishReason"]
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
            provider_state=self._acc.state(),
        )


class GeminiCodec:
    """The :class:`~dsrs.wire.Codec` of the Gemini API (``generateContent`` and its SSE stream)."""

    wire = WIRE
    stream_format: StreamFormat = "sse"

    def __init__(self, *, secrets: tuple[str, ...] = ()) -> None:
        #: Credentials masked in every error this codec raises (a key echoed into a 2xx body).
        self.secrets = secrets

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = encode_body(request)
        try:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise errors.InvalidRequestError(
                f"the request is not JSON-serializable: {exc}", provider=request.provider, model=request.model
            ) from None
        headers = {**endpoint.headers, "accept": "text/event-stream" if stream else "application/json"}
        url = generate_url(endpoint.base_url, request.model, stream=stream)
        return HttpRequest("POST", url, headers, content, endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        try:
            return decode_response(response.status, response.content, model=request.model)
        except errors.LMError as exc:
            raise redact_error(exc, self.secrets) from None

    def stream_decoder(self, request: LMRequest) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(model=request.model, secrets=self.secrets)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return classify(failure)


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
