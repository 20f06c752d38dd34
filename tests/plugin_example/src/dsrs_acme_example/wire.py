"""The Acme chat wire (shaped like Cohere's v2 Chat API), as a sans-IO codec.

``POST {base}/v2/chat`` with ``messages`` whose ``content`` is a string or a list of ``text`` /
``image_url`` blocks; the answer's ``message.content`` is a list of ``text`` and ``thinking``
blocks, ``usage.tokens`` counts tokens. A stream is Server-Sent Events named ``message-start``,
``content-delta``, ``tool-call-start``, ``tool-call-delta``, ``message-end`` (with usage) and
``error``. Errors carry a structured ``code``. (Cohere v2 reference:
https://docs.cohere.com/v2/reference/chat, https://docs.cohere.com/v2/docs/streaming.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dsrs import errors
from dsrs.errors import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import Image, LMRequest, LMResponse, LmUsage, Message, StreamChunk, Text, ToolCall, UnsupportedPartError
from dsrs.wire import DEFAULT_MAX_TOKENS, Endpoint, SSEEvent, StreamFormat, retry_after_from_headers

WIRE = "acme-chat"
#: Provider options the wire takes (``LM("acme:...", k=40)``); any other is refused, never dropped.
OPTIONS = frozenset({"k", "p", "frequency_penalty", "presence_penalty", "safety_mode"})
FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
#: The wire's error codes and the dsrs error class each means (read from the body's ``code``).
ERRORS: dict[str, type[errors.LMError]] = {
    "invalid_api_key": errors.AuthenticationError,
    "rate_limited": errors.RateLimitError,
    "quota_exceeded": errors.QuotaExceededError,
    "too_many_tokens": errors.ContextWindowExceededError,
    "content_blocked": errors.ContentFilterError,
    "model_not_found": errors.InvalidRequestError,
    "overloaded": errors.ProviderUnavailableError,
}

#: Builds the typed error of an ``error`` event; the provider passes its ``failure`` (hooks, secrets).
FailureFactory = Callable[[LMRequest, str, str], errors.LMError]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bad(request: LMRequest, what: str) -> errors.ResponseParseError:
    return errors.ResponseParseError(f"not an Acme chat answer: {what}", provider=request.provider, model=request.model)


def _part(request: LMRequest, part: object) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        ref = {"url": part.data_url()}
        if "detail" in part.options:  # the one per-part option this wire knows
            ref["detail"] = part.options["detail"]
        return {"type": "image_url", "image_url": ref}
    # Refused before anything is sent: a part is never dropped.
    raise UnsupportedPartError(
        f"the Acme chat wire takes text and image parts, not {type(part).__name__}",
        provider=request.provider,
        model=request.model,
    )


def encode_message(request: LMRequest, m: Message) -> dict[str, Any]:
    role = "system" if m.role == "developer" else m.role
    content: Any = m.content if isinstance(m.content, str) or m.content is None else None
    if content is None and m.content is not None:
        content = [_part(request, p) for p in m.parts]
    state = (m.provider_state or {}).get(WIRE)
    if m.role == "assistant" and isinstance(state, dict) and state.get("thinking"):
        # The thinking of an earlier answer goes back with it, as the wire asks (provider_state).
        text = [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])
        content = [{"type": "thinking", "thinking": state["thinking"]}, *text]
    out: dict[str, Any] = {"role": role, "content": content if content is not None else ""}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def encode_body(request: LMRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /v2/chat`` for ``request``; every field of it mapped explicitly."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [encode_message(request, m) for m in request.messages],
        "stream": stream,
        # The wire needs a cap; the same default the budget estimate assumes.
        "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.response_format is not None:
        fmt: dict[str, Any] = {"type": "json_object"}
        if request.response_format.schema is not None:
            fmt["json_schema"] = dict(request.response_format.schema)
        body["response_format"] = fmt
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = {"required": "REQUIRED", "none": "NONE"}.get(str(request.tool_choice))
        if request.tool_choice != "auto":  # "auto" is the wire's default: nothing to send
            if choice is None:
                raise errors.InvalidRequestError(
                    f"tool_choice={request.tool_choice!r}: the Acme wire takes 'auto', 'required' or 'none'",
                    provider=request.provider,
                    model=request.model,
                )
            body["tool_choice"] = choice
    for key, value in request.options.items():
        if key not in OPTIONS:
            raise errors.InvalidRequestError(
                f"unknown Acme option {key}={value!r}; expected one of {sorted(OPTIONS)}",
                provider=request.provider,
                model=request.model,
            )
        body[key] = value
    return body


def _count(request: LMRequest, tokens: Any, name: str) -> int:
    value = tokens.get(name, 0) if isinstance(tokens, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad(request, f"usage.tokens.{name} is {value!r}, not a count")
    return value


def decode_usage(request: LMRequest, usage: Any) -> LmUsage:
    """``usage.tokens`` (what the model read and wrote); the cost is left to the ``dsrs_cost`` hook."""
    if not isinstance(usage, dict):
        raise _bad(request, "no usage object")
    tokens = usage.get("tokens")
    return LmUsage.from_tokens(_count(request, tokens, "input_tokens"), _count(request, tokens, "output_tokens"))


def _tool_call(request: LMRequest, raw: Any) -> ToolCall:
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(raw.get("id"), str):
        raise _bad(request, f"a tool call without id and function name: {str(raw)[:80]!r}")
    args = fn.get("arguments", "{}")
    return ToolCall(raw["id"], fn["name"], args if isinstance(args, str) else json.dumps(args))


def _finish(reason: Any) -> str | None:
    if not isinstance(reason, str):
        return None
    return FINISH.get(reason, reason.lower())


def decode_answer(request: LMRequest, data: Any) -> LMResponse:
    """A decoded JSON answer as an :class:`LMResponse`."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        raise _bad(request, "no message object")
    blocks = message.get("content") or []
    if not isinstance(blocks, list):
        raise _bad(request, f"message.content is {type(blocks).__name__}, not a list")
    text: list[str] = []
    thinking: list[str] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        value = block.get(kind) if kind in ("text", "thinking") else None
        if not isinstance(value, str):
            raise _bad(request, f"a content block of type {kind!r} without its text")
        (text if kind == "text" else thinking).append(value)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _bad(request, "message.tool_calls is not a list")
    reasoning = "".join(thinking) or None
    return LMResponse(
        text="".join(text),
        usage=decode_usage(request, data.get("usage")),
        tool_calls=tuple(_tool_call(request, c) for c in calls),
        reasoning=reasoning,
        finish_reason=_finish(data.get("finish_reason")),
        raw_usage=data.get("usage"),
        provider_state={WIRE: {"thinking": reasoning}} if reasoning else None,
    )


class AcmeStreamDecoder:
    """Decodes one streamed answer, event by event (a :class:`dsrs.wire.StreamDecoder`)."""

    def __init__(self, request: LMRequest, failure: FailureFactory) -> None:
        self.request = request
        self.failure = failure
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.end: dict[str, Any] | None = None

    def feed(self, event: SSEEvent) -> StreamChunk | None:
        data = json.loads(event.data)
        if not isinstance(data, dict):
            raise _bad(self.request, "an event that is not a JSON object")
        name = event.event or data.get("type")  # the SSE event name, else the data's own type
        delta = _obj(data.get("delta"))
        message = _obj(delta.get("message"))
        if name == "content-delta":
            content = _obj(message.get("content"))
            if isinstance(content.get("thinking"), str):
                self.thinking.append(content["thinking"])
                return StreamChunk(reasoning=content["thinking"])
            if not isinstance(content.get("text"), str):
                raise _bad(self.request, "a content-delta without text")
            self.text.append(content["text"])
            return StreamChunk(text=content["text"])
        if name == "tool-call-start":
            self.calls.append(dict(_obj(message.get("tool_calls"))))
        elif name == "tool-call-delta" and self.calls:
            more = _obj(_obj(message.get("tool_calls")).get("function")).get("arguments")
            fn = self.calls[-1].setdefault("function", {})
            fn["arguments"] = str(fn.get("arguments") or "") + (more if isinstance(more, str) else "")
        elif name == "message-end":
            self.end = delta
        elif name == "error":
            text = data.get("message")
            code = str(data.get("code") or "stream_error")
            raise self.failure(self.request, code, text if isinstance(text, str) else "the stream reported an error")
        return None

    def finish(self) -> LMResponse:
        if self.end is None:  # the connection closed before message-end: the answer is incomplete
            raise _bad(self.request, "the stream ended before its message-end event")
        content = [{"type": "text", "text": "".join(self.text)}]
        if self.thinking:
            content.insert(0, {"type": "thinking", "thinking": "".join(self.thinking)})
        answer = {"message": {"content": content, "tool_calls": self.calls}, **self.end}
        return decode_answer(self.request, answer)


def chat_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/v2/chat"


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """The class a structured error ``code`` names, or ``None`` (then the HTTP status decides).

    The body's ``message`` is kept as the error's message, redacted of every secret the provider
    sends (``failure.secrets``): a server may echo the request's key in it.
    """
    code = failure.code
    message = failure.message
    if code is None and failure.body:
        try:
            data = json.loads(failure.body)
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            code = data.get("code") if isinstance(data.get("code"), str) else None
            message = data.get("message") if isinstance(data.get("message"), str) else None
    cls = ERRORS.get(code or "")
    if cls is None and failure.status is None and code is not None:
        cls = errors.ProviderUnavailableError  # an unknown code in a stream: the server failed mid-answer
    if cls is None:
        return None
    return cls(
        message or code or "error",
        provider=failure.provider,
        model=failure.model,
        status=failure.status,
        code=code,
        body=failure.body,
        retry_after=retry_after_from_headers(failure.headers) if cls is errors.RateLimitError else None,
        secrets=failure.secrets,
    )


class AcmeCodec:
    """The :class:`dsrs.wire.Codec` of the Acme chat wire."""

    wire = WIRE
    stream_format: StreamFormat = "sse"

    def __init__(self, failure: FailureFactory) -> None:
        self.failure = failure

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = json.dumps(encode_body(request, stream=stream), ensure_ascii=False).encode("utf-8")
        headers = {**endpoint.headers, "accept": "text/event-stream" if stream else "application/json"}
        return HttpRequest("POST", chat_url(endpoint.base_url), headers, body, endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise _bad(request, "the body is not JSON") from None
        return decode_answer(request, data)

    def stream_decoder(self, request: LMRequest) -> AcmeStreamDecoder:
        return AcmeStreamDecoder(request, self.failure)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return classify(failure)
