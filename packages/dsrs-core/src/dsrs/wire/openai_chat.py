"""The OpenAI Chat Completions wire format, sans-IO.

Pure functions from an :class:`LMRequest` to request bytes and from response bytes to an
:class:`LMResponse` or a typed error. Shared by every OpenAI-compatible server: OpenAI, Groq,
Cerebras, OpenRouter, vLLM, llama.cpp's ``llama-server``, LM Studio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from dsrs import _json, errors
from dsrs._failures import classify_by_status, retry_after_from_headers
from dsrs._usage import LmUsage
from dsrs.plugins._types import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import LMRequest, LMResponse, Message, StreamChunk, ToolCall
from dsrs.wire._codec import Endpoint
from dsrs.wire._sse import SSEEvent

__all__ = [
    "WIRE",
    "ChatStreamDecoder",
    "OpenAIChatCodec",
    "WireOptions",
    "chat_url",
    "classify",
    "decode_json_object",
    "decode_response",
    "encode_body",
    "encode_message",
    "parse_usage",
]

#: Name of this wire format in :attr:`ProviderFailure.code`-free classification dispatch.
WIRE = "openai-chat"


@dataclass(frozen=True, slots=True)
class WireOptions:
    """Per-provider quirks of the OpenAI-compatible wire.

    Attributes:
        max_tokens_field: ``"max_tokens"`` or ``"max_completion_tokens"`` (OpenAI reasoning models).
        send_temperature: ``False`` for models that reject the parameter (o1/o3 reasoning models).
        include_usage_in_stream: send ``stream_options.include_usage`` (usage on streams).
        passthrough_options: provider options copied into the body verbatim; ``None`` = all.
        strict_tools: mark tool schemas ``strict``.
    """

    max_tokens_field: str = "max_tokens"
    send_temperature: bool = True
    include_usage_in_stream: bool = True
    passthrough_options: frozenset[str] | None = None
    strict_tools: bool = False
    extra_body: Mapping[str, Any] = field(default_factory=dict)


DEFAULT_OPTIONS = WireOptions()


def chat_url(base_url: str) -> str:
    """``{base}/chat/completions``; a bare host (no path) gets ``/v1`` first, as servers expect."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


def encode_message(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name is not None:
        d["name"] = m.name
    if m.role == "tool" and m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    if m.tool_calls:
        d["tool_calls"] = [
            {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
            for tc in m.tool_calls
        ]
    return d


def _tool_choice(choice: str | Mapping[str, Any] | None) -> Any:
    if choice is None or not isinstance(choice, str):
        return choice
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def encode_body(request: LMRequest, *, stream: bool = False, options: WireOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``. Every parameter is mapped explicitly."""
    body: dict[str, Any] = {"model": request.model, "messages": [encode_message(m) for m in request.messages]}
    if request.temperature is not None and options.send_temperature:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[options.max_tokens_field] = request.max_tokens
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop"] = list(request.stop)
    rf = request.response_format
    if rf is not None:
        if rf.type == "json_schema" and rf.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": rf.name, "schema": dict(rf.schema), "strict": rf.strict},
            }
        else:
            body["response_format"] = {"type": "json_object"}
    if request.tools:
        tools = []
        for t in request.tools:
            fn: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
            if options.strict_tools:
                fn["strict"] = True
            tools.append({"type": "function", "function": fn})
        body["tools"] = tools
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
    for key, value in request.options.items():
        if options.passthrough_options is None or key in options.passthrough_options:
            body[key] = value
    body.update(options.extra_body)
    if stream:
        body["stream"] = True
        if options.include_usage_in_stream:
            body["stream_options"] = {"include_usage": True}
    return body


def parse_usage(raw: Mapping[str, Any] | None) -> LmUsage:
    """Usage from an OpenAI-style ``usage`` object (cached and reasoning token details included)."""
    if not raw:
        return LmUsage.from_tokens(0, 0)
    # On every call: one constructor, no ``or {}`` placeholders, ABC checks only when details exist.
    get = raw.get
    prompt = int(get("prompt_tokens") or 0)
    completion = int(get("completion_tokens") or 0)
    total = get("total_tokens")
    pdet = get("prompt_tokens_details")
    cdet = get("completion_tokens_details")
    return LmUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion if total is None else int(total),
        cached_tokens=int(pdet.get("cached_tokens") or 0) if pdet and isinstance(pdet, Mapping) else 0,
        reasoning_tokens=int(cdet.get("reasoning_tokens") or 0) if cdet and isinstance(cdet, Mapping) else 0,
        cost_msats=None,
        cost_usd=None,
        calls=1,
    )


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if not raw:
        return ()
    out = []
    for i, tc in enumerate(raw):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = _json.dumps(args if args is not None else {}).decode()
        out.append(ToolCall(id=str(tc.get("id") or f"call_{i}"), name=str(fn.get("name") or ""), arguments=args))
    return tuple(out)


def decode_json_object(body: bytes, what: str, *, provider: str, model: str | None, status: int) -> dict[str, Any]:
    """``body`` as a JSON object, or a :class:`ResponseParseError` saying it was HTML or not JSON."""
    try:
        data = _json.loads(body)
    except _json.JSONDecodeError:
        kind = "HTML" if body.lstrip()[:1] == b"<" else "non-JSON"
        raise _parse_error(
            f"{kind} body where {what} was expected", provider=provider, model=model, body=body, status=status
        ) from None
    if not isinstance(data, dict):
        raise _parse_error(
            f"the body is not a JSON object (expected {what})", provider=provider, model=model, body=body, status=status
        )
    return data


def _parse_error(
    message: str, *, provider: str, model: str | None, body: bytes, status: int
) -> errors.ResponseParseError:
    return errors.ResponseParseError(message, provider=provider, model=model, status=status, body=body)


def decode_response(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, model: str | None = None
) -> LMResponse:
    """Decode a 2xx chat completion body. Raises :class:`ResponseParseError` when malformed."""
    data = decode_json_object(body, "a chat completion", provider=provider, model=model, status=status)
    if "error" in data and "choices" not in data:
        err = classify(ProviderFailure(provider, model, status, headers, body))
        raise (
            err
            if err is not None
            else _parse_error("error object in a 2xx body", provider=provider, model=model, body=body, status=status)
        )
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _parse_error("chat completion has no choices", provider=provider, model=model, body=body, status=status)
    choice = choices[0]
    msg = choice.get("message") or {}
    raw_usage = data.get("usage")
    usage = parse_usage(raw_usage)
    if isinstance(data.get("timings"), dict):  # llama-server reports speed
        usage = LmUsage.from_tokens(
            usage.prompt_tokens,
            usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            detail={"timings": data["timings"]},
        )
    finish = choice.get("finish_reason")
    if finish == "content_filter":
        raise errors.ContentFilterError(
            "the provider's content filter stopped the answer", provider=provider, model=model, status=status
        )
    return LMResponse(
        text=msg.get("content") or "",
        usage=usage,
        tool_calls=_tool_calls(msg.get("tool_calls")),
        reasoning=msg.get("reasoning_content") or msg.get("reasoning") or None,
        finish_reason=finish,
        raw_usage=raw_usage,
        provider=provider,
        model=data.get("model") or model,
    )


class ChatStreamDecoder:
    """Turn SSE ``data:`` payloads of a streamed chat completion into :class:`StreamChunk` s."""

    def __init__(self, *, provider: str, model: str | None = None) -> None:
        self.provider = provider
        self.model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._timings: Any = None
        self.done = False

    def feed(self, data: str | SSEEvent) -> StreamChunk | None:
        if isinstance(data, SSEEvent):
            data = data.data
        if data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            obj = _json.loads(data)
        except _json.JSONDecodeError:
            raise errors.ResponseParseError(
                "malformed stream event", provider=self.provider, model=self.model, body=data
            ) from None
        if not isinstance(obj, dict):
            return None
        if "error" in obj and not obj.get("choices"):
            err = classify(ProviderFailure(self.provider, self.model, None, {}, data.encode()))
            raise err or errors.ProviderUnavailableError("error event in stream", provider=self.provider, body=data)
        if obj.get("usage"):
            self._usage = obj["usage"]
        if isinstance(obj.get("timings"), dict):
            self._timings = obj["timings"]
        if obj.get("model"):
            self.model = obj["model"]
        text = reasoning = ""
        for choice in obj.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
            for tc in delta.get("tool_calls") or ():
                slot = self._tools.setdefault(int(tc.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["name"] += fn["name"]
                if fn.get("arguments"):
                    slot["arguments"] += fn["arguments"]
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        if text:
            self._text.append(text)
        if reasoning:
            self._reasoning.append(reasoning)
        return StreamChunk(text=text, reasoning=reasoning) if (text or reasoning) else None

    def finish(self) -> LMResponse:
        if self._finish == "content_filter":
            raise errors.ContentFilterError(
                "the provider's content filter stopped the answer", provider=self.provider, model=self.model
            )
        if not self.done and self._finish is None:
            raise errors.ResponseParseError(
                "stream ended before the answer was complete", provider=self.provider, model=self.model
            )
        usage = parse_usage(self._usage)
        if self._timings is not None:
            usage = LmUsage.from_tokens(
                usage.prompt_tokens,
                usage.completion_tokens,
                total_tokens=usage.total_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                detail={"timings": self._timings},
            )
        calls = tuple(
            ToolCall(id=t["id"] or f"call_{i}", name=t["name"], arguments=t["arguments"] or "{}")
            for i, t in sorted(self._tools.items())
        )
        return LMResponse(
            text="".join(self._text),
            usage=usage,
            tool_calls=calls,
            reasoning="".join(self._reasoning) or None,
            finish_reason=self._finish,
            raw_usage=self._usage,
            provider=self.provider,
            model=self.model,
        )


# --- errors ---------------------------------------------------------------------------------

_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})
_RATE_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "tokens_rate_limit_exceeded"})
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "context_window_exceeded"})
_FILTER_CODES = frozenset({"content_policy_violation", "content_filter", "responsible_ai_policy_violation"})
_AUTH_CODES = frozenset({"invalid_api_key", "authentication_error", "invalid_authentication", "incorrect_api_key"})
_NOT_FOUND_CODES = frozenset({"model_not_found", "model_not_available", "not_found_error"})


def error_object(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an OpenAI-style error body, or ``None`` when the body is not one."""
    try:
        data = _json.loads(body) if body else None
    except _json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict):
        return err
    if isinstance(err, str):  # some servers send {"error": "message"}
        return {"message": err}
    return None


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """Classify an OpenAI-style error response from its structured ``error.code``/``type``, then status."""
    if failure.status is None and not failure.body:
        return None
    err = error_object(failure.body)
    if err is None:
        if failure.status is not None and 200 <= failure.status < 300:
            return None
        if failure.status is not None and failure.status < 500 and failure.body.lstrip()[:1] == b"<":
            # an HTML page from a proxy instead of the API: nothing structured to go on
            return errors.ResponseParseError(
                f"HTML body with HTTP {failure.status}",
                provider=failure.provider,
                model=failure.model,
                status=failure.status,
                body=failure.body,
                secrets=failure.secrets,
            )
        return classify_by_status(failure) if failure.status is not None else None
    code = str(err.get("code") or "").lower()
    etype = str(err.get("type") or "").lower()
    message = str(err.get("message") or "") or None
    kw: dict[str, Any] = dict(
        provider=failure.provider,
        model=failure.model,
        status=failure.status,
        body=failure.body,
        code=code or etype or None,
        secrets=failure.secrets,
    )
    keys = {code, etype}
    if keys & _QUOTA_CODES:
        return errors.QuotaExceededError(message or "quota exceeded", **kw)
    if keys & _RATE_CODES or (failure.status == 429 and not keys & _QUOTA_CODES):
        return errors.RateLimitError(
            message or "rate limited", retry_after=retry_after_from_headers(failure.headers), **kw
        )
    if keys & _CONTEXT_CODES:
        return errors.ContextWindowExceededError(message or "context window exceeded", **kw)
    if keys & _FILTER_CODES:
        return errors.ContentFilterError(message or "blocked by the content filter", **kw)
    if keys & _AUTH_CODES or failure.status == 401:
        return errors.AuthenticationError(message or "authentication failed", **kw)
    if keys & _NOT_FOUND_CODES or failure.status == 404:
        what = f"model {failure.model!r} not found" if failure.model else "not found"
        return errors.InvalidRequestError(f"{what}: {message}" if message else what, **kw)
    if failure.status is None:
        return errors.ProviderUnavailableError(message or "error in stream", **kw)
    sub = ProviderFailure(
        failure.provider,
        failure.model,
        failure.status,
        failure.headers,
        failure.body,
        code=code or None,
        message=message,
        secrets=failure.secrets,
    )
    return classify_by_status(sub)


class OpenAIChatCodec:
    """The :class:`~dsrs.wire.Codec` of the Chat Completions wire.

    ``options`` is the profile of model-family quirks (:class:`WireOptions`), or a function
    choosing one per request (reasoning models send ``max_completion_tokens`` and no temperature).
    """

    wire = WIRE
    stream_format: Literal["sse"] = "sse"

    def __init__(self, options: WireOptions | Callable[[LMRequest], WireOptions] = DEFAULT_OPTIONS) -> None:
        self._options = options

    def options_for(self, request: LMRequest) -> WireOptions:
        return self._options(request) if callable(self._options) else self._options

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = encode_body(request, stream=stream, options=self.options_for(request))
        headers = endpoint.headers if not stream else {**endpoint.headers, "accept": "text/event-stream"}
        return HttpRequest("POST", chat_url(endpoint.base_url), headers, _json.dumps(body), endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        return decode_response(
            response.status, response.headers, response.content, provider=request.provider, model=request.model
        )

    def stream_decoder(self, request: LMRequest) -> ChatStreamDecoder:
        return ChatStreamDecoder(provider=request.provider, model=request.model)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return classify(failure)
