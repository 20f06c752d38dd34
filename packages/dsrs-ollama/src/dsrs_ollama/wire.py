"""The Ollama native chat wire (``POST /api/chat``), sans-IO.

Pure functions from an :class:`~dsrs.LMRequest` to the request body and from response bytes
(one JSON object, or NDJSON lines when streaming) to an :class:`~dsrs.LMResponse` or a typed error.
Shapes follow Ollama's API reference (``docs/api.md``, "Generate a chat completion", and
docs.ollama.com/api/errors).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from dsrs import errors
from dsrs.plugins import ProviderFailure
from dsrs.transport import ConnectError, HttpRequest, HttpResponse
from dsrs.types import Image, LMRequest, LMResponse, LmUsage, Message, StreamChunk, Text, ToolCall, UnsupportedPartError
from dsrs.wire import Endpoint, SSEEvent, StreamFormat, classify_by_status, retry_after_from_headers
from dsrs.wire.openai_chat import redact_error

__all__ = [
    "DEFAULT_HOST",
    "DURATION_FIELDS",
    "OllamaCodec",
    "TOP_LEVEL_OPTIONS",
    "WIRE",
    "ChatStreamDecoder",
    "classify",
    "decode_response",
    "encode_body",
    "parse_host",
    "parse_usage",
]

#: Name of this wire on :class:`ProviderFailure`, so the plugin's classifier claims its failures.
WIRE = "ollama"
DEFAULT_HOST = "http://localhost:11434"
#: Request options that are top-level fields of ``/api/chat``; every other option goes in ``options``.
TOP_LEVEL_OPTIONS = frozenset({"keep_alive", "think", "format"})
#: Timing fields of the final answer (nanoseconds), copied to ``LmUsage.detail``.
DURATION_FIELDS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def parse_host(value: str | None) -> str:
    """The server URL from ``OLLAMA_HOST`` or ``base_url``: ``host``, ``host:port`` or a URL.

    Without a scheme the port defaults to 11434 (``OLLAMA_HOST=0.0.0.0:11434`` style); with an
    explicit ``http://``/``https://`` and no port, the scheme's own port is used, as the official
    clients do. A trailing ``/api`` is dropped (the routes add it).
    """
    raw = (value or "").strip()
    if not raw:
        return DEFAULT_HOST
    if "://" not in raw:
        raw = "http://" + raw
        default_port: int | None = 11434
    else:
        default_port = None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise errors.InvalidRequestError(
            f"OLLAMA_HOST/base_url must be host, host:port or an http(s) URL, got {value!r}", provider="ollama"
        )
    host = parts.hostname or "127.0.0.1"
    if host == "0.0.0.0":  # a bind address, not one to connect to
        host = "127.0.0.1"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise errors.InvalidRequestError(
            f"OLLAMA_HOST/base_url has an invalid port: {value!r}", provider="ollama"
        ) from None
    port = port or default_port
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path}"


# --- request --------------------------------------------------------------------------------


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        raise errors.InvalidRequestError(
            f"tool call {call.name!r} has arguments that are not JSON: {call.arguments[:80]!r}", provider="ollama"
        ) from None


def _tool_names(messages: tuple[Message, ...]) -> dict[str, str]:
    return {tc.id: tc.name for m in messages for tc in m.tool_calls if tc.id}


def _refuse(part: object, model: str | None, why: str) -> UnsupportedPartError:
    what = type(part).__name__
    return UnsupportedPartError(
        f"the ollama provider cannot send this {what} part: {why}", provider="ollama", model=model
    )


def _content_and_images(m: Message, model: str | None) -> tuple[str, list[str]]:
    """``content`` text and the base64 ``images`` of a message (API docs: ``images``, for
    multimodal models). Ollama takes no audio or documents, and images only as bytes."""
    if m.content is None or isinstance(m.content, str):
        return m.content or "", []
    images: list[str] = []
    for part in m.content:
        if isinstance(part, Text):
            continue
        if not isinstance(part, Image):
            raise _refuse(part, model, "/api/chat takes text and images only")
        if part.data is None:
            raise _refuse(
                part, model, "/api/chat takes image bytes (base64), not a URL: use Image.from_bytes/from_path"
            )
        images.append(part.base64())
    return m.text, images


def encode_message(m: Message, tool_names: Mapping[str, str], model: str | None = None) -> dict[str, Any]:
    role = "system" if m.role == "developer" else m.role
    content, images = _content_and_images(m, model)
    d: dict[str, Any] = {"role": role, "content": content}
    if images:
        d["images"] = images
    if m.tool_calls:
        d["tool_calls"] = [{"function": {"name": tc.name, "arguments": _arguments(tc)}} for tc in m.tool_calls]
    if m.role == "tool":
        name = m.name or (tool_names.get(m.tool_call_id) if m.tool_call_id else None)
        if name:
            d["tool_name"] = name
    return d


def encode_body(request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
    """The JSON body for ``POST /api/chat``. Every parameter is mapped explicitly.

    ``max_tokens`` → ``options.num_predict``; temperature, seed and stop go inside ``options``
    (Ollama ignores them at the top level); LM options such as ``num_ctx`` or ``top_k`` go in
    ``options`` too, except ``keep_alive``, ``think`` and ``format`` which are top-level fields.
    """
    names = _tool_names(request.messages)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [encode_message(m, names, request.model) for m in request.messages],
        "stream": stream,
    }
    options: dict[str, Any] = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.seed is not None:
        options["seed"] = request.seed
    if request.stop:
        options["stop"] = list(request.stop)
    top: dict[str, Any] = {}
    for key, value in request.options.items():
        if key in TOP_LEVEL_OPTIONS:
            top[key] = value
        elif key == "options" and isinstance(value, Mapping):
            options.update(value)
        else:
            options[key] = value
    rf = request.response_format
    if rf is not None:
        top["format"] = dict(rf.schema) if rf.type == "json_schema" and rf.schema is not None else "json"
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
            }
            for t in request.tools
        ]
    body.update(top)
    if options:
        body["options"] = options
    return body


# --- response -------------------------------------------------------------------------------


class _BadShape(ValueError):
    """A 2xx answer whose fields have the wrong types (turned into a ResponseParseError)."""


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _BadShape(f"{key} is not a count: {value!r}"[:100])
    return int(value)


def parse_usage(data: Mapping[str, Any]) -> LmUsage:
    """Usage from the final object: ``prompt_eval_count``/``eval_count`` and the durations.

    Ollama leaves ``prompt_eval_count`` out when the whole prompt came from its KV cache; that
    counts as 0 prompt tokens evaluated.
    """
    prompt = _count(data, "prompt_eval_count")
    completion = _count(data, "eval_count")
    detail: dict[str, Any] = {k: _count(data, k) for k in DURATION_FIELDS if data.get(k) is not None}
    if completion and detail.get("eval_duration"):
        detail["tokens_per_second"] = round(completion / (detail["eval_duration"] / 1e9), 3)
    return LmUsage.from_tokens(prompt, completion, detail=detail)


def _raw_usage(data: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("prompt_eval_count", "eval_count", *DURATION_FIELDS)
    return {k: data[k] for k in keys if k in data}


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _BadShape(f"message.tool_calls is a {type(raw).__name__}, not a list")
    out = []
    for i, tc in enumerate(raw):
        fn = tc.get("function") if isinstance(tc, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _BadShape(f"tool_calls[{i}] is not {{'function': {{'name': ..., 'arguments': ...}}}}")
        args = fn.get("arguments")
        if args is not None and not isinstance(args, (Mapping, str)):
            raise _BadShape(f"tool_calls[{i}].function.arguments is a {type(args).__name__}")
        text = args if isinstance(args, str) else json.dumps(args if args is not None else {}, separators=(",", ":"))
        call_id = tc.get("id") or f"call_{uuid.uuid4().hex[:16]}"
        out.append(ToolCall(id=str(call_id), name=fn["name"], arguments=text))
    return tuple(out)


def _str_field(msg: Mapping[str, Any], key: str) -> str:
    value = msg.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadShape(f"message.{key} is a {type(value).__name__}, not a str")
    return value


def _message(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    msg = obj.get("message")
    if msg is None:
        return {}
    if not isinstance(msg, Mapping):
        raise _BadShape(f"message is a {type(msg).__name__}, not an object")
    return msg


def _finish(done_reason: Any, calls: tuple[ToolCall, ...]) -> str | None:
    if calls:
        return "tool_calls"
    return str(done_reason) if done_reason else None


def _parse_error(
    message: str, *, model: str | None, body: bytes | str, status: int | None
) -> errors.ResponseParseError:
    return errors.ResponseParseError(message, provider="ollama", model=model, status=status, body=body)


def decode_response(status: int, body: bytes, *, model: str | None = None) -> LMResponse:
    """Decode a 2xx ``/api/chat`` answer (``stream: false``)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = "HTML" if body.lstrip()[:1] == b"<" else "non-JSON"
        raise _parse_error(
            f"{kind} body where an Ollama chat answer was expected", model=model, body=body, status=status
        ) from None
    if not isinstance(data, dict):
        raise _parse_error("Ollama chat answer is not a JSON object", model=model, body=body, status=status)
    if "error" in data and "message" not in data:
        raise classify(ProviderFailure("ollama", model, status, {}, body, wire=WIRE)) or _parse_error(
            "error object in a 2xx body", model=model, body=body, status=status
        )
    if not isinstance(data.get("message"), dict) or data.get("done") is not True:
        raise _parse_error("Ollama chat answer has no final message", model=model, body=body, status=status)
    try:
        msg = _message(data)
        calls = _tool_calls(msg.get("tool_calls"))
        text, thinking = _str_field(msg, "content"), _str_field(msg, "thinking")
        usage = parse_usage(data)
    except _BadShape as exc:
        raise _parse_error(f"unexpected Ollama answer shape: {exc}", model=model, body=body, status=status) from None
    resolved = data.get("model")
    return LMResponse(
        text=text,
        usage=usage,
        tool_calls=calls,
        reasoning=thinking or None,
        finish_reason=_finish(data.get("done_reason"), calls),
        raw_usage=_raw_usage(data),
        provider="ollama",
        model=resolved if isinstance(resolved, str) and resolved else model,
    )


class ChatStreamDecoder:
    """Turn the NDJSON lines of a streamed ``/api/chat`` into :class:`StreamChunk` s."""

    def __init__(self, *, model: str | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.model = model
        self.secrets = secrets
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[ToolCall] = []
        self._final: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self._final is not None

    def feed(self, line: bytes | str | SSEEvent) -> StreamChunk | None:
        if isinstance(line, SSEEvent):
            line = line.data
        try:
            return self._line(line)
        except errors.LMError as exc:
            raise redact_error(exc, self.secrets) from None

    def _line(self, line: bytes | str) -> StreamChunk | None:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _parse_error(
                "malformed NDJSON line in the Ollama stream", model=self.model, body=line, status=None
            ) from None
        if not isinstance(obj, dict):
            raise _parse_error("NDJSON line is not a JSON object", model=self.model, body=line, status=None)
        if "error" in obj:
            # docs.ollama.com/api/errors: a failure after streaming began is a line {"error": "..."}.
            raw = line.encode() if isinstance(line, str) else line
            raise classify(ProviderFailure("ollama", self.model, None, {}, raw, wire=WIRE)) or _parse_error(
                "error line in the Ollama stream", model=self.model, body=line, status=None
            )
        try:
            msg = _message(obj)
            text, reasoning = _str_field(msg, "content"), _str_field(msg, "thinking")
            self._calls.extend(_tool_calls(msg.get("tool_calls")))
            if obj.get("done") is True:
                parse_usage(obj)  # checked on its own line
        except _BadShape as exc:
            raise _parse_error(
                f"unexpected Ollama stream line shape: {exc}", model=self.model, body=line, status=None
            ) from None
        if text:
            self._text.append(text)
        if reasoning:
            self._reasoning.append(reasoning)
        if obj.get("done") is True:
            self._final = obj
        return StreamChunk(text=text, reasoning=reasoning) if (text or reasoning) else None

    def finish(self) -> LMResponse:
        if self._final is None:
            raise _parse_error(
                "the Ollama stream ended before its final (done: true) line", model=self.model, body=b"", status=None
            )
        final = self._final
        calls = tuple(self._calls)
        resolved = final.get("model")
        return LMResponse(
            text="".join(self._text),
            usage=parse_usage(final),
            tool_calls=calls,
            reasoning="".join(self._reasoning) or None,
            finish_reason=_finish(final.get("done_reason"), calls),
            raw_usage=_raw_usage(final),
            provider="ollama",
            model=resolved if isinstance(resolved, str) and resolved else self.model,
        )


class OllamaCodec:
    """The :class:`~dsrs.wire.Codec` of Ollama's ``/api/chat`` (NDJSON when streaming)."""

    wire = WIRE
    stream_format: StreamFormat = "ndjson"

    def __init__(self, *, secrets: tuple[str, ...] = ()) -> None:
        #: Credentials masked in every error this codec raises (a key echoed into a 2xx body).
        self.secrets = secrets

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = encode_body(request, stream=stream)
        try:
            content = json.dumps(body, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise errors.InvalidRequestError(
                f"the request is not JSON-serializable: {exc}", provider=request.provider, model=request.model
            ) from None
        return HttpRequest("POST", endpoint.url("/api/chat"), endpoint.headers, content, endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        try:
            return decode_response(response.status, response.content, model=request.model)
        except errors.LMError as exc:
            raise redact_error(exc, self.secrets) from None

    def stream_decoder(self, request: LMRequest) -> ChatStreamDecoder:
        return ChatStreamDecoder(model=request.model, secrets=self.secrets)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return classify(failure)


# --- errors ---------------------------------------------------------------------------------


def error_message(body: bytes) -> str | None:
    """The ``error`` string of an Ollama error body (``{"error": "..."}``), else ``None``."""
    try:
        data = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return None


def pull_hint(model: str | None) -> str:
    return f"run `ollama pull {model}` on the server" if model else "run `ollama pull <model>` on the server"


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """Classify an Ollama failure: its status (the body is ``{"error": "..."}``, no codes).

    The 404 of ``/api/chat`` means the model is not pulled (the route itself always exists on an
    Ollama server), so the answer carries the ``ollama pull`` hint without reading the text.
    """
    kw: dict[str, Any] = dict(provider=failure.provider, model=failure.model, secrets=failure.secrets)
    if failure.exception is not None:
        if isinstance(failure.exception, ConnectError):
            return errors.ProviderUnavailableError(
                f"cannot reach the Ollama server ({failure.exception}); is `ollama serve` running? "
                "Set OLLAMA_HOST or LM(..., base_url=...) if it listens elsewhere",
                **kw,
            )
        return None
    message = error_message(failure.body)
    status = failure.status
    if status is None:  # an error line inside a stream
        if message is None:
            return None
        return errors.ProviderUnavailableError(f"Ollama failed while streaming: {message}", body=failure.body, **kw)
    if 200 <= status < 300:
        if message is None:
            return None
        return errors.ProviderUnavailableError(
            f"Ollama reported an error: {message}", status=status, body=failure.body, **kw
        )
    kw.update(status=status, body=failure.body)
    if message is None and failure.body.lstrip()[:1] == b"<" and status < 500:
        return errors.ResponseParseError(f"HTML body with HTTP {status}; is this an Ollama server?", **kw)
    if status == 404:
        if message is None:
            return errors.InvalidRequestError("endpoint not found; is this an Ollama server (/api/chat)?", **kw)
        return errors.InvalidRequestError(
            f"model {failure.model!r} is not available on the Ollama server: {message} — {pull_hint(failure.model)}",
            code="model_not_found",
            **kw,
        )
    if status == 429:
        return errors.RateLimitError(
            message or "rate limited", retry_after=retry_after_from_headers(failure.headers), **kw
        )
    sub = ProviderFailure(
        failure.provider, failure.model, status, failure.headers, failure.body, message=message, secrets=failure.secrets
    )
    return classify_by_status(sub)
