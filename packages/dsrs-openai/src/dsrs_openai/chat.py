"""The base of every Chat Completions provider in this package (OpenAI and the vendors).

Builds on :class:`dsrs.wire.OpenAICompatibleProvider` and the shared ``openai_chat`` codec, and adds
what the vendors differ in: which provider options exist (an unknown option is a clear
:class:`InvalidRequestError`, never silently sent or dropped), per-model quirks, body adjustments,
and usage fields outside the OpenAI shape (DeepSeek cache hits, xAI reasoning tokens, OpenRouter cost).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from dsrs import ProviderConfig, ProviderSpec
from dsrs.errors import (
    AuthenticationError,
    ContentFilterError,
    InvalidRequestError,
    LMError,
    ProviderFailure,
    ResponseParseError,
)
from dsrs.transport import BodyTooLargeError, HttpRequest, HttpResponse, TransportError
from dsrs.types import Cost, LMRequest, LMResponse, LmUsage, StreamChunk
from dsrs.wire import OpenAICompatibleProvider, SSEDecoder, WireOptions, openai_chat

__all__ = ["CLIENT_OPTIONS", "OpenAIChatProvider", "dumps_body", "usage_from_raw", "without_none_options"]

#: Options every provider here understands that configure the client and never reach the body.
CLIENT_OPTIONS = frozenset({"extra_body", "extra_headers"})


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def usage_from_raw(raw: Mapping[str, Any] | None, parsed: LmUsage) -> LmUsage:
    """Usage from an OpenAI-style ``usage`` object, with the vendors' variants folded in.

    * DeepSeek reports cache hits as ``prompt_cache_hit_tokens``;
    * xAI counts ``reasoning_tokens`` outside ``completion_tokens`` (``total`` = prompt + completion
      + reasoning); dsrs counts them inside, as OpenAI does;
    * OpenRouter reports the charged ``cost`` in USD, which is used as is.
    """
    if not raw:
        return parsed
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    pdet: Mapping[str, Any] = raw.get("prompt_tokens_details") or {}
    cdet: Mapping[str, Any] = raw.get("completion_tokens_details") or {}
    if not isinstance(pdet, Mapping):
        pdet = {}
    if not isinstance(cdet, Mapping):
        cdet = {}
    cached = _int(pdet.get("cached_tokens")) or _int(raw.get("prompt_cache_hit_tokens"))
    reasoning = _int(cdet.get("reasoning_tokens"))
    total = _int(raw.get("total_tokens")) or None
    if reasoning and total is not None and total == prompt + completion + reasoning:
        completion += reasoning
    usage = LmUsage.from_tokens(
        prompt,
        completion,
        total_tokens=total,
        cached_tokens=min(cached, prompt),
        reasoning_tokens=reasoning,
        detail=parsed.detail,
    )
    cost = raw.get("cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
        usage = usage.with_cost(Cost(usd=float(cost)))
    return usage


def _has_vendor_usage(raw: Mapping[str, Any]) -> bool:
    """Does this usage object hold anything the shared codec does not read (see :func:`usage_from_raw`)?"""
    if "prompt_cache_hit_tokens" in raw or "cost" in raw:
        return True
    cdet = raw.get("completion_tokens_details")
    reasoning = _int(cdet.get("reasoning_tokens")) if isinstance(cdet, Mapping) else 0
    return (
        bool(reasoning)
        and _int(raw.get("total_tokens"))
        == _int(raw.get("prompt_tokens")) + _int(raw.get("completion_tokens")) + reasoning
    )


class OpenAIChatProvider(OpenAICompatibleProvider):
    """A Chat Completions provider with a declared option set and per-model quirks.

    Subclasses set ``known_options`` (body fields users may pass as ``LM(..., top_p=0.9)``),
    ``wire_options`` and the class attributes of :class:`OpenAICompatibleProvider`, and may
    override :meth:`options_for` and :meth:`adjust_body`.
    """

    known_options: ClassVar[frozenset[str]] = frozenset()
    #: A vendor object carrying usage on a stream's last chunk when ``usage`` is absent (``"x_groq"``).
    stream_usage_key: ClassVar[str | None] = None
    #: Options consumed by the provider itself (headers, routing), never sent in the body.
    client_options: ClassVar[frozenset[str]] = CLIENT_OPTIONS
    #: The key is only required when talking to this host (a local or proxy base_url may need none).
    key_required_for_host: ClassVar[str | None] = None

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self._wire_options = dataclasses.replace(self.wire_options, passthrough_options=self.known_options)
        # the codec masks this provider's credentials in what a server echoes into a 2xx body
        self.codec = openai_chat.OpenAIChatCodec(self.options_for, secrets=self.secrets())
        host = urlsplit(self.base_url).hostname or ""
        self._key_required = self.requires_api_key and (
            self.key_required_for_host is None or host == self.key_required_for_host
        )

    # --- request ----------------------------------------------------------------------------

    def check_options(self, request: LMRequest) -> None:
        """Refuse options this API does not document, naming the closest known one (typos)."""
        allowed = self.known_options | self.client_options
        unknown = sorted(k for k in request.options if k not in allowed)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
            raise InvalidRequestError(
                f"{', '.join(hints)} {'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                f"of the {self.name} API; known: {', '.join(sorted(self.known_options)) or '(none)'}. "
                "Pass extra_body={...} to send fields verbatim.",
                provider=self.name,
                model=request.model,
            )

    def options_for(self, request: LMRequest) -> WireOptions:
        return self._wire_options

    def adjust_body(self, body: dict[str, Any], request: LMRequest, *, stream: bool) -> None:
        """Vendor-specific changes to the encoded body (in place)."""

    def request_headers(self, request: LMRequest) -> Mapping[str, str]:
        extra = request.options.get("extra_headers")
        if isinstance(extra, Mapping) and extra:
            return {**self.endpoint.headers, **{str(k).lower(): str(v) for k, v in extra.items()}}
        return self.endpoint.headers

    def encode_json(self, request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
        """The body this provider sends for ``request`` (golden tests compare it)."""
        if self._key_required and not self.config.api_key:
            env = " or ".join(self.api_key_env) or "api_key="
            raise AuthenticationError(f"no API key: set {env}", provider=self.name, model=request.model)
        self.check_options(request)
        request = without_none_options(request)
        body = openai_chat.encode_body(request, stream=stream, options=self.options_for(request))
        extra = request.options.get("extra_body")
        if isinstance(extra, Mapping):
            body.update(extra)
        self.adjust_body(body, request, stream=stream)
        return body

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        body = self.encode_json(request, stream=stream)
        headers = self.request_headers(request)
        if stream:
            headers = {**headers, "accept": "text/event-stream"}
        return HttpRequest("POST", self.url, headers, dumps_body(body), self.timeout)

    # --- response ---------------------------------------------------------------------------

    def fix_usage(self, response: LMResponse) -> LMResponse:
        raw = response.raw_usage
        if raw is None or not _has_vendor_usage(raw):
            return response  # the shared codec already read the OpenAI shape
        return dataclasses.replace(response, usage=usage_from_raw(raw, response.usage))

    def decode(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        try:
            response = self.fix_usage(super().decode(resp, request))
        except LMError as exc:
            # An error object inside a 2xx body (OpenRouter puts the real status in error.code).
            err = openai_chat.classify(
                ProviderFailure(
                    self.name,
                    request.model,
                    resp.status,
                    resp.headers,
                    resp.content,
                    wire=self.wire,
                    secrets=self.config.secrets(),
                )
            )
            if err is not None and not isinstance(err, ResponseParseError):
                raise err from None
            raise openai_chat.redact_error(exc, self.secrets()) from None
        if not response.text and not response.tool_calls and b'"refusal"' in resp.content:
            _raise_refusal(_refusal_of(resp.content), request, self.name)
        return response

    def _stream_event_error(self, request: LMRequest, data: str, exc: LMError) -> LMError:
        err = openai_chat.classify(
            ProviderFailure(
                self.name, request.model, None, {}, data.encode(), wire=self.wire, secrets=self.config.secrets()
            )
        )
        return err if err is not None and not isinstance(err, ResponseParseError) else exc  # exc: already masked

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        decoder = openai_chat.ChatStreamDecoder(provider=self.name, model=request.model, secrets=self.secrets())
        sse = SSEDecoder()
        sse_seen = False
        side_usage: Mapping[str, Any] | None = None
        side_key = f'"{self.stream_usage_key}"' if self.stream_usage_key else None
        refusal: list[str] = []
        http_request = self.encode(request, stream=True)
        async with self.open_stream(http_request, request) as resp:
            try:
                whole: list[bytes] | None = [] if "json" in resp.headers.get("content-type", "") else None
                held = 0
                async for raw in resp.aiter_bytes():
                    if whole is None and not sse_seen and raw.lstrip()[:1] == b"{":
                        whole = []  # JSON where SSE was asked for: an error object, or a server that does not stream
                    if whole is not None:
                        held += len(raw)
                        if held > http_request.max_body_bytes:  # the same bound as a plain body
                            raise BodyTooLargeError("max_body_bytes", http_request.max_body_bytes)
                        whole.append(raw)
                        continue
                    sse_seen = True
                    for event in sse.iter_feed(raw):
                        try:
                            chunk = decoder.feed(event.data)
                        except LMError as exc:
                            raise self._stream_event_error(request, event.data, exc) from None
                        if side_key is not None and side_key in event.data:
                            side_usage = _side_usage(event.data, side_key[1:-1]) or side_usage
                        if '"refusal"' in event.data:
                            refusal.append(_refusal_delta(event.data))
                        if chunk is not None:
                            yield chunk
                if whole is not None:
                    response = self.decode(HttpResponse(resp.status, resp.headers, b"".join(whole)), request)
                    yield StreamChunk(text=response.text, reasoning=response.reasoning or "", response=response)
                    return
                for event in sse.close():
                    chunk = decoder.feed(event.data)
                    if chunk is not None:
                        yield chunk
            except TransportError as exc:
                raise self.failure(request, exception=exc) from None
        final = decoder.finish()
        if not final.text and not final.tool_calls and "".join(refusal):
            _raise_refusal("".join(refusal), request, self.name)
        if final.raw_usage is None and side_usage is not None:
            final = dataclasses.replace(final, raw_usage=side_usage, usage=openai_chat.parse_usage(side_usage))
        yield StreamChunk(response=self.fix_usage(final))


def _refusal_of(body: bytes) -> str:
    import json

    try:
        msg = json.loads(body)["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    refusal = msg.get("refusal") if isinstance(msg, dict) else None
    return refusal if isinstance(refusal, str) else ""


def _refusal_delta(data: str) -> str:
    import json

    try:
        choices = json.loads(data).get("choices") or []
        piece = (choices[0].get("delta") or {}).get("refusal") if choices else None
    except (ValueError, AttributeError, TypeError):
        return ""
    return piece if isinstance(piece, str) else ""


def _raise_refusal(refusal: str, request: LMRequest, provider: str) -> None:
    """A refusal instead of an answer (structured outputs): no answer to parse, so a typed error."""
    if refusal:
        raise ContentFilterError(f"the model refused: {refusal}", provider=provider, model=request.model)


def _side_usage(data: str, key: str) -> Mapping[str, Any] | None:
    import json

    try:
        obj = json.loads(data)
    except ValueError:
        return None
    side = obj.get(key) if isinstance(obj, dict) else None
    usage = side.get("usage") if isinstance(side, dict) else None
    return usage if isinstance(usage, dict) and usage else None


def without_none_options(request: LMRequest) -> LMRequest:
    """Options set to ``None`` mean "not set" (as in ``LM.with_options``): never sent as ``null``."""
    if any(v is None for v in request.options.values()):
        return dataclasses.replace(request, options={k: v for k, v in request.options.items() if v is not None})
    return request


def dumps_body(body: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
