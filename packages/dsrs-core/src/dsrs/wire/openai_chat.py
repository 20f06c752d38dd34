"""The OpenAI Chat Completions wire format, sans-IO.

Pure functions from an :class:`LMRequest` to request bytes and from response bytes to an
:class:`LMResponse` or a typed error. Shared by every OpenAI-compatible server: OpenAI, Groq,
Cerebras, Mistral, DeepSeek, OpenRouter, vLLM, llama.cpp's ``llama-server``, LM Studio.

Content parts (OpenAI API reference, "Chat Completions: Create: messages: user: content"):
:class:`~dsrs.types.Text` → ``{"type": "text"}``; :class:`~dsrs.types.Image` → ``image_url`` (a URL
or a ``data:`` URL, ``detail`` from the part's options); :class:`~dsrs.types.Audio` →
``input_audio`` ``{data, format}`` (base64 WAV or MP3 only); :class:`~dsrs.types.File` → ``file``
``{file_data, filename}``. Which kinds a server or model takes is the profile's
:attr:`WireOptions.parts`; anything else raises :class:`~dsrs.types.UnsupportedPartError` before
sending.

Responses: ``message.content`` is a string, or (Mistral's reasoning models, docs.mistral.ai
"Reasoning") a list of chunks ``{"type": "text", "text"}`` and ``{"type": "thinking", "thinking":
[{"type": "text", "text"}]}``, streamed the same way in ``delta.content``; thinking goes to
``reasoning``, never into ``text``. An ``error`` object in any body or stream chunk — also next to
``choices``, as in OpenRouter's mid-stream errors (openrouter.ai/docs "Errors: Error during
streaming") — is a typed error, and a body of the wrong types is a
:class:`~dsrs.errors.ResponseParseError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from dsrs import _json, errors
from dsrs._failures import classify_by_status, retry_after_from_headers
from dsrs._parts import Audio, File, Image, Media, Part, Text, UnsupportedPartError
from dsrs._usage import LmUsage
from dsrs.plugins._types import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import LMRequest, LMResponse, Message, StreamChunk, Tool, ToolCall
from dsrs.wire._codec import Endpoint, StreamFormat
from dsrs.wire._sse import SSEEvent

__all__ = [
    "ALL_PARTS",
    "WIRE",
    "ChatStreamDecoder",
    "OpenAIChatCodec",
    "WireOptions",
    "audio_format",
    "chat_url",
    "classify",
    "content_text",
    "decode_json_object",
    "decode_response",
    "encode_body",
    "encode_content",
    "encode_message",
    "error_fields",
    "parse_usage",
    "redact_error",
    "unsupported_part",
]

#: Name of this wire format (put on failures).
WIRE = "openai-chat"
#: Every media part kind the Chat Completions wire can carry.
ALL_PARTS = frozenset({"image", "audio", "file"})


@dataclass(frozen=True, slots=True)
class WireOptions:
    """A profile of per-provider (or per-model-family) quirks of the OpenAI-compatible wire.

    Attributes:
        max_tokens_field: ``"max_tokens"`` or ``"max_completion_tokens"`` (OpenAI reasoning models).
        send_temperature: ``False`` for models that reject the parameter (o1/o3 reasoning models).
        include_usage_in_stream: send ``stream_options.include_usage`` (usage on streams).
        passthrough_options: provider options copied into the body verbatim; ``None`` = all.
        strict_tools: mark tool schemas ``strict`` when the :class:`~dsrs.types.Tool` says nothing.
        extra_body: fields merged into every body.
        parts: the media part kinds (``"image"``, ``"audio"``, ``"file"``) this server and model
            take; any other part is refused before sending.
        system_role: the role ``system``/``developer`` messages are sent as (``"user"`` for
            models that reject both, e.g. o1-mini), or ``None`` to keep them.
    """

    max_tokens_field: str = "max_tokens"
    send_temperature: bool = True
    include_usage_in_stream: bool = True
    passthrough_options: frozenset[str] | None = None
    strict_tools: bool = False
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    parts: frozenset[str] = ALL_PARTS
    system_role: str | None = None


DEFAULT_OPTIONS = WireOptions()


@lru_cache(maxsize=256)
def chat_url(base_url: str) -> str:
    """``{base}/chat/completions``; a bare host (no path) gets ``/v1`` first, as servers expect."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


# --- content parts ----------------------------------------------------------------------------

#: ``input_audio.format`` for the audio media types OpenAI takes (only WAV and MP3).
_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def unsupported_part(provider: str, model: str | None, part: Part, why: str) -> UnsupportedPartError:
    """The error for a part a wire or model cannot carry, naming the provider and the part type."""
    what = type(part).__name__
    media = f" ({part.media_type})" if isinstance(part, Media) else ""
    return UnsupportedPartError(
        f"the {provider} provider cannot send this {what} part{media}: {why}", provider=provider, model=model
    )


def audio_format(part: Audio) -> str | None:
    """OpenAI's ``input_audio.format`` (``"wav"``/``"mp3"``) for ``part``, or ``None``."""
    return _AUDIO_FORMATS.get(part.media_type.lower())


def _encode_part(part: Part, options: WireOptions, provider: str, model: str | None) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if part.kind not in options.parts:
        raise unsupported_part(provider, model, part, f"this server/model takes {_kinds(options.parts)}")
    if isinstance(part, Image):
        ref: dict[str, Any] = {"url": part.data_url()}
        if "detail" in part.options:
            ref["detail"] = part.options["detail"]
        return {"type": "image_url", "image_url": ref}
    if isinstance(part, Audio):
        fmt = audio_format(part)
        if fmt is None:
            raise unsupported_part(provider, model, part, "input_audio takes WAV or MP3 only")
        if part.data is None:
            raise unsupported_part(provider, model, part, "input_audio takes base64 data, not a URL")
        return {"type": "input_audio", "input_audio": {"data": part.base64(), "format": fmt}}
    if isinstance(part, File):
        if part.data is None:
            raise unsupported_part(provider, model, part, "a file part takes the bytes (file_data), not a URL")
        return {"type": "file", "file": {"file_data": part.data_url(), "filename": part.name or _filename(part)}}
    raise unsupported_part(provider, model, part, "unknown part type")  # pragma: no cover - Part is closed


def _kinds(kinds: frozenset[str]) -> str:
    return "text only" if not kinds else "text and " + ", ".join(sorted(kinds)) + " parts"


def _filename(part: File) -> str:
    ext = part.media_type.rsplit("/", 1)[-1].split("+")[0] or "bin"
    return f"file.{ext}"


def encode_content(
    m: Message, options: WireOptions = DEFAULT_OPTIONS, *, provider: str = "openai-compatible", model: str | None = None
) -> str | list[dict[str, Any]] | None:
    """A message's ``content``: its string, or the list of content parts (media on user turns only)."""
    content = m.content
    if content is None or isinstance(content, str):
        return content
    if m.role != "user":
        for part in content:
            if not isinstance(part, Text):
                raise unsupported_part(provider, model, part, f"media parts go in user messages, not {m.role!r} ones")
    return [_encode_part(p, options, provider, model) for p in content]


def encode_message(
    m: Message, options: WireOptions = DEFAULT_OPTIONS, *, provider: str = "openai-compatible", model: str | None = None
) -> dict[str, Any]:
    role = options.system_role if options.system_role and m.role in ("system", "developer") else m.role
    content = m.content
    if content is not None and content.__class__ is not str:  # parts (plain text is the fast path)
        content = encode_content(m, options, provider=provider, model=model)  # type: ignore[assignment]
    d: dict[str, Any] = {"role": role, "content": content}
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


def encode_tool(t: Tool, options: WireOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """``{"type": "function", "function": {...}}``; ``strict`` from the tool, else the profile's."""
    fn: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
    strict = getattr(t, "strict", None)
    if strict is not None:
        fn["strict"] = bool(strict)
    elif options.strict_tools:
        fn["strict"] = True
    return {"type": "function", "function": fn}


def encode_body(request: LMRequest, *, stream: bool = False, options: WireOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``. Every parameter is mapped explicitly."""
    who, model = request.provider, request.model
    body: dict[str, Any] = {
        "model": model,
        "messages": [encode_message(m, options, provider=who, model=model) for m in request.messages],
    }
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
        body["tools"] = [encode_tool(t, options) for t in request.tools]
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


# --- responses --------------------------------------------------------------------------------


class _BadShape(ValueError):
    """A 2xx body whose fields have the wrong types (turned into a ResponseParseError)."""


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value.__class__ is int and value >= 0:  # the common case first: this runs on every call
        return value  # type: ignore[no-any-return]
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _BadShape(f"usage.{key} is not a token count: {value!r}"[:120])
    return int(value)


def parse_usage(raw: Mapping[str, Any] | None) -> LmUsage:
    """Usage from an OpenAI-style ``usage`` object (cached and reasoning token details included)."""
    if not raw:
        return LmUsage.from_tokens(0, 0)
    if raw.__class__ is not dict and not isinstance(raw, Mapping):
        raise _BadShape(f"usage is a {type(raw).__name__}, not an object")
    # On every call: one constructor, no ``or {}`` placeholders, detail checks only when they exist.
    get = raw.get
    prompt = get("prompt_tokens")
    completion = get("completion_tokens")
    total = get("total_tokens")
    if not (prompt.__class__ is int and completion.__class__ is int and prompt >= 0 and completion >= 0):
        prompt = _count(raw, "prompt_tokens")
        completion = _count(raw, "completion_tokens")
    if total is None:
        total = prompt + completion
    elif not (total.__class__ is int and total >= 0):
        total = _count(raw, "total_tokens")
    pdet = get("prompt_tokens_details")
    cdet = get("completion_tokens_details")
    return LmUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=_count(pdet, "cached_tokens") if pdet and pdet.__class__ is dict else 0,
        reasoning_tokens=_count(cdet, "reasoning_tokens") if cdet and cdet.__class__ is dict else 0,
        cost_msats=None,
        cost_usd=None,
        calls=1,
    )


def _thinking_text(value: Any) -> str:
    """A ``thinking`` chunk's text: a list of ``{"type": "text", "text"}`` chunks, or a str."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise _BadShape(f"a thinking chunk holds a {type(value).__name__}, not a list of text chunks")
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
            out.append(item["text"])
        else:
            raise _BadShape("a thinking chunk's item is not a text chunk")
    return "".join(out)


def content_text(content: Any) -> tuple[str, str]:
    """``(text, reasoning)`` of a message's (or delta's) ``content``: a str, ``None`` or a chunk list.

    Text chunks (``text``, ``output_text``) go to the text, ``thinking`` chunks to the reasoning;
    chunks that carry no answer text (Mistral's ``reference`` citations) are skipped. Anything
    else (an object, a number) is a malformed body.
    """
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        raise _BadShape(f"message content is a {type(content).__name__}, not text")
    text: list[str] = []
    reasoning: list[str] = []
    for chunk in content:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        if not isinstance(chunk, Mapping):
            raise _BadShape(f"a content chunk is a {type(chunk).__name__}, not an object")
        kind = chunk.get("type")
        if kind in ("text", "output_text"):
            value = chunk.get("text")
            if not isinstance(value, str):
                raise _BadShape(f"a text chunk's text is a {type(value).__name__}")
            text.append(value)
        elif kind == "thinking":
            reasoning.append(_thinking_text(chunk.get("thinking")))
        elif kind == "reasoning":
            reasoning.append(_thinking_text(chunk.get("text", chunk.get("reasoning", ""))))
    return "".join(text), "".join(reasoning)


def _reasoning_value(value: Any) -> str:
    """``reasoning_content`` / ``reasoning`` (a str, or a chunk list like ``content``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    text, thinking = content_text(value)
    return text or thinking


def _reasoning_field(msg: Mapping[str, Any]) -> str:
    value = msg.get("reasoning_content")
    return _reasoning_value(value if value is not None else msg.get("reasoning"))


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise _BadShape(f"tool_calls is a {type(raw).__name__}, not a list")
    out = []
    for i, tc in enumerate(raw):
        if not isinstance(tc, Mapping):
            raise _BadShape(f"tool_calls[{i}] is a {type(tc).__name__}, not an object")
        fn = tc.get("function") or {}
        if not isinstance(fn, Mapping):
            raise _BadShape(f"tool_calls[{i}].function is a {type(fn).__name__}, not an object")
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise _BadShape(f"tool_calls[{i}].function.name is missing or not a str")
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = _json.dumps(args if args is not None else {}).decode()
        out.append(ToolCall(id=str(tc.get("id") or f"call_{i}"), name=name, arguments=args))
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
    message: str, *, provider: str, model: str | None, body: bytes | str, status: int | None
) -> errors.ResponseParseError:
    return errors.ResponseParseError(message, provider=provider, model=model, status=status, body=body)


def redact_error(exc: errors.LMError, secrets: tuple[str, ...]) -> errors.LMError:
    """``exc`` with ``secrets`` masked in its message, body and code (in place; returned).

    A codec decodes bodies without knowing the provider's credentials; the codec instance does
    (it is built with them), so a key a server echoes inside a 2xx body or a stream chunk is
    masked before the error leaves the codec.
    """
    if not secrets:
        return exc
    exc.message = errors.redact(exc.message, secrets) or ""
    exc.body = errors.redact(exc.body, secrets)
    exc.code = errors.redact(exc.code, secrets) if exc.code is not None else None
    exc.args = (exc.message,)
    return exc


def _error_in_body(
    data: Mapping[str, Any], headers: Mapping[str, str], body: bytes, *, provider: str, model: str | None, status: int
) -> errors.LMError:
    err = classify(ProviderFailure(provider, model, status, headers, body, wire=WIRE))
    if err is None or isinstance(err, errors.ResponseParseError):
        err = errors.ProviderUnavailableError(
            "the provider reported an error in a 2xx body", provider=provider, model=model, status=status, body=body
        )
    return err


def _with_timings(usage: LmUsage, timings: Any) -> LmUsage:
    return LmUsage.from_tokens(
        usage.prompt_tokens,
        usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        detail={"timings": timings},
    )


def decode_response(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, model: str | None = None
) -> LMResponse:
    """Decode a 2xx chat completion body. Raises :class:`ResponseParseError` when malformed and the
    typed error when the body carries an ``error`` object (with or without ``choices``)."""
    data = decode_json_object(body, "a chat completion", provider=provider, model=model, status=status)
    if data.get("error"):
        raise _error_in_body(data, headers, body, provider=provider, model=model, status=status)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _parse_error("chat completion has no choices", provider=provider, model=model, body=body, status=status)
    try:
        return _decode_choice(data, choices[0], provider=provider, model=model, status=status)
    except _BadShape as exc:
        raise _parse_error(
            f"unexpected chat completion shape: {exc}", provider=provider, model=model, body=body, status=status
        ) from None


def _decode_choice(
    data: Mapping[str, Any], choice: Mapping[str, Any], *, provider: str, model: str | None, status: int
) -> LMResponse:
    msg = choice.get("message")
    if msg is None:
        msg = {}
    if msg.__class__ is not dict:
        raise _BadShape(f"choices[0].message is a {type(msg).__name__}, not an object")
    raw_usage = data.get("usage")
    usage = parse_usage(raw_usage)
    if isinstance(data.get("timings"), dict):  # llama-server reports speed
        usage = _with_timings(usage, data["timings"])
    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise _BadShape(f"finish_reason is a {type(finish).__name__}")
    if finish == "content_filter":
        raise errors.ContentFilterError(
            "the provider's content filter stopped the answer", provider=provider, model=model, status=status
        )
    content = msg.get("content")
    if content.__class__ is str:
        text, chunk_reasoning = content, ""
    else:
        text, chunk_reasoning = content_text(content)
    # Reasoning fields and tool calls are absent from most answers: no call to find that out.
    reasoning = (_reasoning_field(msg) if "reasoning_content" in msg or "reasoning" in msg else "") or chunk_reasoning
    resolved = data.get("model")
    raw_calls = msg.get("tool_calls")
    return LMResponse(
        text=text,
        usage=usage,
        tool_calls=_tool_calls(raw_calls) if raw_calls else (),
        reasoning=reasoning or None,
        finish_reason=finish,
        raw_usage=raw_usage,
        provider=provider,
        model=resolved if isinstance(resolved, str) and resolved else model,
    )


class ChatStreamDecoder:
    """Turn SSE ``data:`` payloads of a streamed chat completion into :class:`StreamChunk` s."""

    def __init__(self, *, provider: str, model: str | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.provider = provider
        self.model = model
        self.secrets = secrets
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._timings: Any = None
        self.done = False

    def feed(self, data: str | SSEEvent) -> StreamChunk | None:
        if data.__class__ is not str:
            data = data.data  # type: ignore[union-attr]
        try:
            return self._feed(data)  # type: ignore[arg-type]
        except _BadShape as exc:
            raise redact_error(
                errors.ResponseParseError(
                    f"unexpected stream chunk shape: {exc}", provider=self.provider, model=self.model, body=data
                ),
                self.secrets,
            ) from None
        except errors.LMError as exc:
            raise redact_error(exc, self.secrets) from None

    def _feed(self, data: str) -> StreamChunk | None:
        if data == "[DONE]" or data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            obj = _json.loads(data)
        except _json.JSONDecodeError:
            raise errors.ResponseParseError(
                "malformed stream event", provider=self.provider, model=self.model, body=data
            ) from None
        if obj.__class__ is not dict:
            return None
        if obj.get("error"):
            # Any chunk carrying an error fails the stream, also when it has choices (OpenRouter's
            # last chunk: {"error": {...}, "choices": [{"finish_reason": "error", ...}]}).
            err = classify(ProviderFailure(self.provider, self.model, None, {}, data.encode(), wire=WIRE))
            if err is None or isinstance(err, errors.ResponseParseError):
                err = errors.ProviderUnavailableError(
                    "error event in stream", provider=self.provider, model=self.model, body=data
                )
            raise err
        usage = obj.get("usage")
        if usage:
            if usage.__class__ is not dict:
                raise _BadShape(f"usage is a {type(usage).__name__}, not an object")
            self._usage = usage
        timings = obj.get("timings")
        if timings.__class__ is dict:
            self._timings = timings
        model = obj.get("model")
        if model and model.__class__ is str:
            self.model = model
        choices = obj.get("choices") or []
        if choices.__class__ is not list:
            raise _BadShape(f"choices is a {type(choices).__name__}, not a list")
        text = reasoning = ""
        for choice in choices:
            if choice.__class__ is not dict:
                raise _BadShape("a choice is not an object")
            delta = choice.get("delta") or {}
            if delta.__class__ is not dict:
                raise _BadShape(f"delta is a {type(delta).__name__}, not an object")
            content = delta.get("content")
            if content.__class__ is str:  # the common case: a text delta
                text += content  # type: ignore[operator]
            elif content is not None:
                piece, thinking = content_text(content)
                text += piece
                reasoning += thinking
            raw_reasoning = delta.get("reasoning_content")
            if raw_reasoning is None:
                raw_reasoning = delta.get("reasoning")
            if raw_reasoning is not None:
                reasoning += _reasoning_value(raw_reasoning)
            calls = delta.get("tool_calls")
            if calls:
                self._tool_deltas(calls)
            finish = choice.get("finish_reason")
            if finish:
                if not isinstance(finish, str):
                    raise _BadShape(f"finish_reason is a {type(finish).__name__}")
                self._finish = finish
        if text:
            self._text.append(text)
        if reasoning:
            self._reasoning.append(reasoning)
        return StreamChunk(text=text, reasoning=reasoning) if (text or reasoning) else None

    def _tool_deltas(self, raw: Any) -> None:
        if not raw:
            return
        if not isinstance(raw, list):
            raise _BadShape(f"delta.tool_calls is a {type(raw).__name__}, not a list")
        for tc in raw:
            if not isinstance(tc, Mapping):
                raise _BadShape("a tool call delta is not an object")
            index = tc.get("index", 0)
            if isinstance(index, bool) or not isinstance(index, int):
                raise _BadShape(f"tool call delta index is {index!r}"[:80])
            slot = self._tools.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if tc.get("id"):
                slot["id"] = str(tc["id"])
            fn = tc.get("function") or {}
            if not isinstance(fn, Mapping):
                raise _BadShape("a tool call delta's function is not an object")
            for key in ("name", "arguments"):
                piece = fn.get(key)
                if piece is None:
                    continue
                if not isinstance(piece, str):
                    raise _BadShape(f"a tool call delta's {key} is a {type(piece).__name__}, not a str")
                slot[key] += piece

    def finish(self) -> LMResponse:
        if self._finish == "content_filter":
            raise errors.ContentFilterError(
                "the provider's content filter stopped the answer", provider=self.provider, model=self.model
            )
        if not self.done and self._finish is None:
            raise errors.ResponseParseError(
                "stream ended before the answer was complete", provider=self.provider, model=self.model
            )
        try:
            usage = parse_usage(self._usage)
        except _BadShape as exc:
            raise errors.ResponseParseError(
                f"unexpected usage in the stream: {exc}", provider=self.provider, model=self.model
            ) from None
        if self._timings is not None:
            usage = _with_timings(usage, self._timings)
        for i, t in sorted(self._tools.items()):
            if not t["name"]:
                raise errors.ResponseParseError(
                    f"streamed tool call {i} has no function name", provider=self.provider, model=self.model
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


# --- errors -----------------------------------------------------------------------------------
# Structured fields first (``error.code`` / ``error.type``), then the HTTP status; body text is
# never searched. Vendors differ in the envelope, not the meaning, so every shape is normalised:
#
# * OpenAI, Groq, DeepSeek, Together: ``{"error": {"message", "type", "param", "code"}}``;
# * Cerebras: the same fields at the top level (``{"message", "type", "param", "code"}``);
# * Mistral: top level with ``"object": "error"``;
# * OpenRouter: ``{"error": {"code": 402, "message", "metadata"}}`` (a numeric code = HTTP status);
# * xAI / llama.cpp: ``{"code": "...", "error": "message"}``;
# * Responses API stream ``error`` events: ``{"type": "error", "code", "message"}``.

_QUOTA = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded", "insufficient_balance", "payment_required"}
)
_RATE = frozenset(
    {
        "rate_limit_exceeded",
        "rate_limit_error",
        "too_many_requests_error",
        "tokens_rate_limit_exceeded",
        "rate_limited",
        "requests",
        "tokens",
        "queue_exceeded",
    }
)
_CONTEXT = frozenset(
    {"context_length_exceeded", "string_above_max_length", "context_window_exceeded", "request_too_large"}
)
_FILTER = frozenset(
    {
        "content_policy_violation",
        "content_filter",
        "invalid_prompt",
        "responsible_ai_policy_violation",
        "moderation_blocked",
    }
)
_AUTH = frozenset(
    {
        "invalid_api_key",
        "wrong_api_key",
        "authentication_error",
        "invalid_authentication",
        "incorrect_api_key",
        "unauthorized",
    }
)
_PERMISSION = frozenset(
    {
        "permission_denied",
        "permission_error",
        "permission_denied_error",
        "unsupported_country_region_territory",
        "model_not_allowed",
    }
)
_NOT_FOUND = frozenset({"model_not_found", "model_not_available", "not_found_error", "model_decommissioned"})
_UNAVAILABLE = frozenset(
    {
        "server_error",
        "overloaded_error",
        "service_unavailable",
        "engine_overloaded",
        "server_is_overloaded",
        "capacity_exceeded",
        "internal_error",
        "api_error",
        "service_unavailable_error",
    }
)
#: Non-standard statuses: Groq 498 (flex capacity), Anthropic-style 529 (overloaded) behind routers.
_UNAVAILABLE_STATUSES = frozenset({498, 529})
_ENVELOPE_KEYS = ("message", "type", "code")


def _load(body: bytes) -> Any:
    try:
        return _json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        return None


def error_fields(body: bytes) -> dict[str, Any] | None:
    """The error object of any supported vendor envelope, normalised to ``message``/``type``/``code``."""
    data = _load(body)
    if isinstance(data, list) and data and isinstance(data[0], Mapping):  # some gateways wrap in a list
        data = data[0]
    if not isinstance(data, Mapping):
        return None
    err = data.get("error")
    if isinstance(err, Mapping):
        return dict(err)
    if isinstance(err, str):  # xAI / llama.cpp style: {"code": "...", "error": "message"}
        return {"message": err, "code": data.get("code"), "type": data.get("type")}
    if (
        data.get("object") == "error"
        or data.get("type") == "error"
        or ("choices" not in data and "output" not in data and "message" in data and ("type" in data or "code" in data))
    ):
        return {k: data.get(k) for k in (*_ENVELOPE_KEYS, "param")}
    return None


def _status_hint(fields: Mapping[str, Any], status: int | None) -> int | None:
    code = fields.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 and (status is None or status < 400):
        return code  # OpenRouter puts the real status in error.code (also inside 200 streams)
    return status


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """A typed error for an OpenAI-wire failure, or ``None`` when there is nothing to classify."""
    if failure.status is None and not failure.body:
        return None  # a transport exception: the generic exception classification applies
    fields = error_fields(failure.body)
    if fields is None:
        if failure.status is not None and 200 <= failure.status < 300:
            return None
        if failure.body.lstrip()[:1] == b"<" and (failure.status is None or failure.status < 500):
            return errors.ResponseParseError(
                f"HTML body with HTTP {failure.status}" if failure.status else "HTML body where JSON was expected",
                provider=failure.provider,
                model=failure.model,
                status=failure.status,
                body=failure.body,
                secrets=failure.secrets,
            )
        if failure.status in _UNAVAILABLE_STATUSES:
            return errors.ProviderUnavailableError(
                f"provider over capacity ({failure.status})",
                provider=failure.provider,
                model=failure.model,
                status=failure.status,
                retry_after=retry_after_from_headers(failure.headers),
                body=failure.body,
                secrets=failure.secrets,
            )
        return classify_by_status(failure) if failure.status is not None else None
    status = _status_hint(fields, failure.status)
    code = str(fields.get("code") or "").lower() if not isinstance(fields.get("code"), int) else ""
    etype = str(fields.get("type") or "").lower()
    message = str(fields.get("message") or "").strip() or None
    keys = {code, etype} - {""}
    kw: dict[str, Any] = dict(
        provider=failure.provider,
        model=failure.model,
        status=failure.status if failure.status is not None else status,
        body=failure.body,
        code=code or etype or None,
        secrets=failure.secrets,
    )
    if keys & _QUOTA or status == 402:
        return errors.QuotaExceededError(message or "quota or credit exhausted", **kw)
    if keys & _RATE or status == 429:
        return errors.RateLimitError(
            message or "rate limited", retry_after=retry_after_from_headers(failure.headers), **kw
        )
    if keys & _CONTEXT or status == 413:
        return errors.ContextWindowExceededError(message or "context window exceeded", **kw)
    if keys & _FILTER:
        return errors.ContentFilterError(message or "blocked by the content policy", **kw)
    if keys & _AUTH or status == 401:
        return errors.AuthenticationError(message or "authentication failed (check the API key)", **kw)
    if keys & _PERMISSION or status == 403:
        return errors.PermissionDeniedError(message or "permission denied", **kw)
    if keys & _NOT_FOUND or status == 404:
        what = f"model {failure.model!r} not found" if failure.model else "not found"
        return errors.InvalidRequestError(f"{what}: {message}" if message else what, **kw)
    if keys & _UNAVAILABLE or (status is not None and (status >= 500 or status in _UNAVAILABLE_STATUSES)):
        return errors.ProviderUnavailableError(
            message or f"server error {status}", retry_after=retry_after_from_headers(failure.headers), **kw
        )
    if status is None or 200 <= status < 300:
        return errors.ProviderUnavailableError(message or "error reported in the stream", **kw)
    sub = ProviderFailure(
        failure.provider,
        failure.model,
        status,
        failure.headers,
        failure.body,
        code=code or etype or None,
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
    stream_format: StreamFormat = "sse"

    def __init__(
        self,
        options: WireOptions | Callable[[LMRequest], WireOptions] = DEFAULT_OPTIONS,
        *,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._options = options
        #: Credentials masked in every error this codec raises (see :func:`redact_error`).
        self.secrets = secrets

    def options_for(self, request: LMRequest) -> WireOptions:
        return self._options(request) if callable(self._options) else self._options

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = encode_body(request, stream=stream, options=self.options_for(request))
        headers = endpoint.headers if not stream else {**endpoint.headers, "accept": "text/event-stream"}
        return HttpRequest("POST", chat_url(endpoint.base_url), headers, _json.dumps(body), endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        try:
            return decode_response(
                response.status, response.headers, response.content, provider=request.provider, model=request.model
            )
        except errors.LMError as exc:
            raise redact_error(exc, self.secrets) from None

    def stream_decoder(self, request: LMRequest) -> ChatStreamDecoder:
        return ChatStreamDecoder(provider=request.provider, model=request.model, secrets=self.secrets)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return classify(failure)
