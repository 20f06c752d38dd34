"""The :class:`~dsrs.wire.Codec` of the Anthropic Messages API: encode, decode, stream, classify."""

from __future__ import annotations

import json
from collections.abc import Callable

from dsrs import errors
from dsrs.errors import ProviderFailure
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import LMRequest, LMResponse
from dsrs.wire import Endpoint, StreamFormat, json_dumps
from dsrs_anthropic import failures
from dsrs_anthropic.request import beta_header, encode_body, output_tool_name
from dsrs_anthropic.response import bad, decode_message, loads
from dsrs_anthropic.stream import FailureFactory, MessageStreamDecoder

__all__ = ["AnthropicCodec", "messages_url"]


def messages_url(base_url: str) -> str:
    """``{base}/v1/messages`` (a base that already ends in ``/v1`` is not doubled)."""
    base = base_url.rstrip("/")
    return (base if base.endswith("/v1") else base + "/v1") + "/messages"


def _default_failure(request: LMRequest, code: str, message: str, body: bytes) -> errors.LMError:
    failure = ProviderFailure(
        request.provider or "anthropic", request.model, None, {}, body, code=code, message=message, wire=failures.WIRE
    )
    return failures.classify(failure) or errors.ProviderUnavailableError(message, provider=failure.provider)


class AnthropicCodec:
    """Sans-IO codec of ``POST /v1/messages``.

    ``failure`` builds the typed error of a stream ``error`` event; a provider passes a function
    calling its :meth:`~dsrs.wire.HttpProvider.failure`, so hooks run and its secrets are redacted.
    """

    wire = failures.WIRE
    stream_format: StreamFormat = "sse"

    def __init__(self, failure: FailureFactory | None = None) -> None:
        self._failure: Callable[[LMRequest, str, str, bytes], errors.LMError] = failure or _default_failure

    def encode(self, request: LMRequest, endpoint: Endpoint, *, stream: bool) -> HttpRequest:
        body = encode_body(request, stream=stream)
        headers = dict(endpoint.headers)
        headers["accept"] = "text/event-stream" if stream else "application/json"
        beta = beta_header(request)
        if beta:
            headers["anthropic-beta"] = beta
        try:
            content = json_dumps(body)
        except (TypeError, ValueError) as exc:
            raise errors.InvalidRequestError(
                f"the request is not JSON-serializable: {exc}", provider=request.provider, model=request.model
            ) from None
        return HttpRequest("POST", messages_url(endpoint.base_url), headers, content, endpoint.timeout)

    def decode(self, request: LMRequest, response: HttpResponse) -> LMResponse:
        body = response.content
        try:
            data = loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            kind = "HTML" if body.lstrip()[:1] == b"<" else "non-JSON"
            raise bad(request, f"{kind} body where a Message was expected", body) from None
        if not isinstance(data, dict):
            raise bad(request, f"the body is not a JSON object (got {type(data).__name__})", body)
        if data.get("type") == "error":
            code = failures.error_object(body) or {}
            raise self._failure(
                request, str(code.get("type") or "api_error"), str(code.get("message") or "error in a 2xx body"), body
            )
        return decode_message(data, request, forced_tool=output_tool_name(request), body=body)

    def stream_decoder(self, request: LMRequest) -> MessageStreamDecoder:
        return MessageStreamDecoder(request, forced_tool=output_tool_name(request), failure=self._failure)

    def classify(self, failure: ProviderFailure) -> errors.LMError | None:
        return failures.classify(failure)
