"""The OpenAI Responses API wire format (``POST /v1/responses``), sans-IO.

Used for codex models and the ``openai-responses:`` prefix. Mapping from an :class:`LMRequest`:

* leading ``system``/``developer`` messages → ``instructions``; the rest → ``input`` items
  (assistant tool calls → ``function_call`` items, tool results → ``function_call_output``);
  user content parts → ``input_text`` / ``input_image`` (URL or data URL, ``detail``) /
  ``input_file`` (``file_data`` + ``filename``, or ``file_url``); audio is refused before sending;
* ``max_tokens`` → ``max_output_tokens``; ``temperature`` only for non-reasoning models;
* ``response_format`` → ``text.format`` (``json_schema`` with ``name``/``schema``/``strict``);
* tools → flat ``{"type": "function", "name", "parameters", "strict"}`` (``strict`` from the
  Tool); ``reasoning_effort`` → ``reasoning.effort``; ``store`` is ``false`` unless asked for (dsrs sends the whole context);
* ``seed`` does not exist in this API and is not sent; ``stop`` does not exist either and is
  rejected with :class:`InvalidRequestError` (the answer would differ from what was asked).

Usage: ``input_tokens`` (with ``input_tokens_details.cached_tokens``), ``output_tokens`` (with
``output_tokens_details.reasoning_tokens``). Streams are SSE events typed by ``type``:
``response.output_text.delta``, ``response.reasoning_summary_text.delta``,
``response.output_item.done``, ``response.completed`` / ``response.incomplete`` /
``response.failed`` and ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from dsrs import errors
from dsrs.errors import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import File, Image, LMRequest, LMResponse, LmUsage, Message, Part, StreamChunk, Text, ToolCall
from dsrs.wire import Endpoint, SSEEvent, StreamFormat, json_dumps, openai_chat
from dsrs.wire.openai_chat import classify

__all__ = [
    "RESPONSE_OPTIONS",
    "WIRE",
    "ResponsesCodec",
    "ResponsesStreamDecoder",
    "decode_response",
    "encode_body",
    "parse_usage",
    "responses_url",
]

WIRE = "openai-responses"
#: Provider options sent as top-level body fields (``reasoning_effort`` and ``verbosity`` are nested).
RESPONSE_OPTIONS = frozenset(
    {
        "parallel_tool_calls",
        "store",
        "metadata",
        "top_p",
        "user",
        "service_tier",
        "truncation",
        "include",
        "prompt_cache_key",
        "safety_identifier",
        "max_tool_calls",
        "reasoning",
        "background",
        "previous_response_id",
        "top_logprobs",
    }
)
_NESTED_OPTIONS = frozenset({"reasoning_effort", "verbosity", "extra_body"})


@lru_cache(maxsize=256)  # built on every request, as openai_chat.chat_url is
def responses_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/responses"


def _text_only(m: Message, where: str) -> str:
    """The text of a message whose place in the Responses input takes text only."""
    for part in m.parts:
        if not isinstance(part, Text):
            raise openai_chat.unsupported_part(WIRE, None, part, f"{where} takes text only")
    return m.text


def _input_part(part: Part, provider: str, model: str) -> dict[str, Any]:
    """A user content part (API reference, "Responses > Create > input > message > content")."""
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, Image):
        item: dict[str, Any] = {"type": "input_image", "image_url": part.data_url()}
        item["detail"] = part.options.get("detail", "auto")
        return item
    if isinstance(part, File):
        if part.data is None:
            return {"type": "input_file", "file_url": part.url}
        return {"type": "input_file", "file_data": part.data_url(), "filename": part.name or "file"}
    raise openai_chat.unsupported_part(
        provider, model, part, "the Responses API takes text, images and files (use an openai: chat model for audio)"
    )


def _content(m: Message, provider: str, model: str) -> str | list[dict[str, Any]]:
    if isinstance(m.content, str) or m.content is None:
        return m.content or ""
    if m.role != "user":
        return _text_only(m, f"an {m.role} message")
    return [_input_part(p, provider, model) for p in m.content]


def _input_items(request: LMRequest) -> tuple[str | None, list[dict[str, Any]]]:
    messages = request.messages
    i = 0
    instructions: list[str] = []
    while i < len(messages) and messages[i].role in ("system", "developer"):
        instructions.append(_text_only(messages[i], "instructions"))
        i += 1
    items: list[dict[str, Any]] = []
    for m in messages[i:]:
        if m.role == "tool":
            output = _text_only(m, "a function_call_output")
            items.append({"type": "function_call_output", "call_id": m.tool_call_id or "", "output": output})
            continue
        if m.content is not None and (m.content or not m.tool_calls):
            items.append({"role": m.role, "content": _content(m, request.provider, request.model)})
        for tc in m.tool_calls:
            items.append({"type": "function_call", "call_id": tc.id, "name": tc.name, "arguments": tc.arguments})
    return ("\n\n".join(instructions) if instructions else None), items


def _tool_choice(choice: str | Mapping[str, Any]) -> Any:
    if not isinstance(choice, str):
        return dict(choice)
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def encode_body(request: LMRequest, *, stream: bool = False, reasoning: bool = False) -> dict[str, Any]:
    """The JSON body for ``POST /responses``. Every parameter is mapped explicitly."""
    if request.stop:
        raise errors.InvalidRequestError(
            "the Responses API has no 'stop' parameter; use an openai: chat model for stop sequences",
            provider=request.provider,
            model=request.model,
        )
    instructions, items = _input_items(request)
    body: dict[str, Any] = {"model": request.model}
    if instructions is not None:
        body["instructions"] = instructions
    body["input"] = items
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    if request.temperature is not None and not reasoning:
        body["temperature"] = request.temperature
    text: dict[str, Any] = {}
    rf = request.response_format
    if rf is not None:
        if rf.type == "json_schema" and rf.schema is not None:
            text["format"] = {"type": "json_schema", "name": rf.name, "schema": dict(rf.schema), "strict": rf.strict}
        else:
            text["format"] = {"type": "json_object"}
    opts = request.options
    if "verbosity" in opts:
        text["verbosity"] = opts["verbosity"]
    if text:
        body["text"] = text
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters),
                # The Responses API defaults strict to true; a Tool that says nothing is sent as before.
                "strict": bool(getattr(t, "strict", None) or False),
            }
            for t in request.tools
        ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
    if "reasoning_effort" in opts:
        body["reasoning"] = {**dict(opts.get("reasoning") or {}), "effort": opts["reasoning_effort"]}
    for key, value in opts.items():
        if key in RESPONSE_OPTIONS and key not in body:
            body[key] = value
    body.setdefault("store", False)
    extra = opts.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    if stream:
        body["stream"] = True
    return body


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _BadShape(f"usage.{key} is not a token count: {value!r}"[:100])
    return int(value)


def parse_usage(raw: Mapping[str, Any] | None) -> LmUsage:
    """Usage from a Responses ``usage`` object (cached input and reasoning output included)."""
    if not raw:
        return LmUsage.from_tokens(0, 0)
    if not isinstance(raw, Mapping):
        raise _BadShape(f"usage is a {type(raw).__name__}, not an object")
    idet = raw.get("input_tokens_details") or {}
    odet = raw.get("output_tokens_details") or {}
    return LmUsage.from_tokens(
        _count(raw, "input_tokens"),
        _count(raw, "output_tokens"),
        total_tokens=_count(raw, "total_tokens") if raw.get("total_tokens") is not None else None,
        cached_tokens=_count(idet, "cached_tokens") if isinstance(idet, Mapping) else 0,
        reasoning_tokens=_count(odet, "reasoning_tokens") if isinstance(odet, Mapping) else 0,
    )


def _parse_error(
    message: str, *, provider: str, model: str | None, body: bytes | str, status: int | None = None
) -> errors.ResponseParseError:
    return errors.ResponseParseError(message, provider=provider, model=model, status=status, body=body)


def _failure_error(err: Any, *, provider: str, model: str | None, status: int | None) -> errors.LMError:
    payload = json.dumps({"error": err if isinstance(err, Mapping) else {"message": str(err)}}).encode()
    classified = classify(ProviderFailure(provider, model, status if status and status >= 400 else None, {}, payload))
    return classified or errors.ProviderUnavailableError(
        "the response failed", provider=provider, model=model, body=payload
    )


class _BadShape(ValueError):
    """A 2xx body whose fields have the wrong types (turned into a ResponseParseError)."""


def _items(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadShape(f"{where} is a {type(value).__name__}, not a list")
    return value


def _text(part: Any, key: str, where: str) -> str:
    if not isinstance(part, Mapping):
        raise _BadShape(f"a {where} part is a {type(part).__name__}, not an object")
    value = part.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadShape(f"a {where} part's {key} is a {type(value).__name__}, not a str")
    return value


class _Output:
    """What a response's ``output`` items say: text, refusal, reasoning, function calls."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []

    def add_item(self, item: Any) -> None:
        if not isinstance(item, Mapping):
            raise _BadShape(f"an output item is a {type(item).__name__}, not an object")
        kind = item.get("type")
        if kind == "message":
            for part in _items(item.get("content"), "message content"):
                kind_of = part.get("type") if isinstance(part, Mapping) else None
                if kind_of == "output_text":
                    self.text.append(_text(part, "text", "output_text"))
                elif kind_of == "refusal":
                    self.refusal.append(_text(part, "refusal", "refusal"))
                elif not isinstance(part, Mapping):
                    raise _BadShape(f"a message content part is a {type(part).__name__}, not an object")
        elif kind == "reasoning":
            for part in (*_items(item.get("summary"), "reasoning summary"), *_items(item.get("content"), "reasoning")):
                text = _text(part, "text", "reasoning")
                if text:
                    self.reasoning.append(text)
        elif kind == "function_call":
            name, args = item.get("name"), item.get("arguments")
            if not isinstance(name, str) or not name:
                raise _BadShape("a function_call item has no name")
            if args is not None and not isinstance(args, (str, Mapping)):
                raise _BadShape(f"a function_call's arguments are a {type(args).__name__}")
            self.calls.append(
                ToolCall(
                    id=str(item.get("call_id") or item.get("id") or f"call_{len(self.calls)}"),
                    name=name,
                    arguments=args if isinstance(args, str) else json.dumps(args or {}),
                )
            )


def _finish_reason(data: Mapping[str, Any], out: _Output, *, provider: str, model: str | None) -> str:
    status = data.get("status")
    if status == "incomplete":
        reason = str((data.get("incomplete_details") or {}).get("reason") or "")
        if reason == "content_filter":
            raise errors.ContentFilterError(
                "the provider's content filter stopped the answer", provider=provider, model=model
            )
        return "length" if reason == "max_output_tokens" else reason or "incomplete"
    if out.refusal and not out.text:
        raise errors.ContentFilterError(f"the model refused: {''.join(out.refusal)}", provider=provider, model=model)
    return "tool_calls" if out.calls else "stop"


def _response_from(
    data: Mapping[str, Any], out: _Output, *, provider: str, model: str | None, text: str | None = None
) -> LMResponse:
    if data.get("status") == "failed" or (data.get("error") and data.get("status") not in ("completed", "incomplete")):
        raise _failure_error(data.get("error") or {}, provider=provider, model=model, status=None)
    finish = _finish_reason(data, out, provider=provider, model=model)
    raw_usage = data.get("usage")
    return LMResponse(
        text="".join(out.text) if text is None else text,
        usage=parse_usage(raw_usage),
        tool_calls=tuple(out.calls),
        reasoning="".join(out.reasoning) or None,
        finish_reason=finish,
        raw_usage=raw_usage,
        provider=provider,
        model=str(data.get("model") or model or "") or None,
    )


def decode_response(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, model: str | None = None
) -> LMResponse:
    """Decode a 2xx ``response`` object. Raises :class:`ResponseParseError` when malformed."""
    data = openai_chat.decode_json_object(body, "a response object", provider=provider, model=model, status=status)
    if "output" not in data:
        err = classify(ProviderFailure(provider, model, status, headers, body)) if "error" in data else None
        raise err or _parse_error(
            "response object has no output", provider=provider, model=model, body=body, status=status
        )
    try:
        out = _Output()
        for item in _items(data.get("output"), "output"):
            out.add_item(item)
        return _response_from(data, out, provider=provider, model=model)
    except _BadShape as exc:
        raise _parse_error(
            f"unexpected response object shape: {exc}", provider=provider, model=model, body=body, status=status
        ) from None


class ResponsesStreamDecoder:
    """Turn the SSE events of a streamed response into :class:`StreamChunk` s and a final response."""

    def __init__(self, *, provider: str, model: str | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.provider = provider
        self.model = model
        self.secrets = secrets
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._items = _Output()
        self._final: Mapping[str, Any] | None = None

    def feed(self, data: str | SSEEvent) -> StreamChunk | None:
        if isinstance(data, SSEEvent):
            data = data.data
        try:
            return self._event(data)
        except _BadShape as exc:
            raise openai_chat.redact_error(
                _parse_error(
                    f"unexpected stream event shape: {exc}", provider=self.provider, model=self.model, body=data
                ),
                self.secrets,
            ) from None
        except errors.LMError as exc:
            raise openai_chat.redact_error(exc, self.secrets) from None

    def _event(self, data: str) -> StreamChunk | None:
        if data.strip() == "[DONE]":
            return None
        try:
            event = json.loads(data)
        except ValueError:
            raise _parse_error("malformed stream event", provider=self.provider, model=self.model, body=data) from None
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta = _text(event, "delta", "delta event")
            if delta:
                self._text.append(delta)
                return StreamChunk(text=delta)
            return None
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            delta = _text(event, "delta", "delta event")
            if delta:
                self._reasoning.append(delta)
                return StreamChunk(reasoning=delta)
            return None
        if kind == "response.output_item.done" and isinstance(event.get("item"), Mapping):
            item = event["item"]
            if item.get("type") in ("function_call", "message"):
                self._items.add_item(item)
            return None
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            resp = event.get("response")
            self._final = resp if isinstance(resp, Mapping) else {"status": kind.rsplit(".", 1)[-1]}
            if kind == "response.failed":
                raise _failure_error(
                    self._final.get("error") or {}, provider=self.provider, model=self.model, status=None
                )
            return None
        if kind == "error":
            nested = event.get("error")
            err: Mapping[str, Any] = nested if isinstance(nested, Mapping) else event
            raise _failure_error(
                {k: err.get(k) for k in ("code", "message", "type", "param")},
                provider=self.provider,
                model=self.model,
                status=None,
            )
        return None

    def finish(self) -> LMResponse:
        if self._final is None:
            raise _parse_error(
                "stream ended before response.completed", provider=self.provider, model=self.model, body=""
            )
        final = self._final
        try:
            out = _Output()
            for item in _items(final.get("output"), "output"):
                out.add_item(item)
            if not out.calls:
                out.calls = self._items.calls
            if not out.text and not self._text:
                out.text = self._items.text
            if not out.reasoning:
                out.reasoning = self._reasoning
            text = "".join(self._text) if self._text else None
            return _response_from(final, out, provider=self.provider, model=self.model, text=text)
        except _BadShape as exc:
            raise _parse_error(
                f"unexpected final response shape: {exc}", provider=self.provider, model=self.model, body=""
            ) from None


class ResponsesCodec:
    """The :class:`~dsrs.wire.Codec` of the Responses API (``POST /v1/responses``).

    ``reasoning`` tells, per model, whether ``temperature`` is left out (reasoning models).
    """

    wire = WIRE
    stream_format: StreamFormat = "sse"

    def __init__(
        self, reasoning: Callable[[str], bool] = lambda model: False, *, secrets: tuple[str, ...] = ()
    ) -> None:
        self._reasoning = reasoning
        #: Credentials masked in every error this codec raises (a key echoed into a 2xx body).
        self.secrets = secrets

    def encode_body(self, request: LMRequest, *, stream: bool) -> dict[str, Any]:
        return encode_body(request, stream=stream, reasoning=self._reasoning(request.model))

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = self.encode_body(request, stream=stream)
        headers = endpoint.headers if not stream else {**endpoint.headers, "accept": "text/event-stream"}
        return HttpRequest("POST", responses_url(endpoint.base_url), headers, json_dumps(body), endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        try:
            return decode_response(
                response.status, response.headers, response.content, provider=request.provider, model=request.model
            )
        except errors.LMError as exc:
            raise openai_chat.redact_error(exc, self.secrets) from None

    def stream_decoder(self, request: LMRequest) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(provider=request.provider, model=request.model, secrets=self.secrets)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return classify(failure)
