"""OpenAI: Chat Completions by default, the Responses API for codex models and ``openai-responses:``.

``LM("gpt-4o")``, ``LM("openai:o3-mini", reasoning_effort="low")``, ``LM("codex-mini-latest")``
(Responses API), ``LM("openai-responses:gpt-4.1")`` (forced Responses API). Environment:
``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` (``OpenAI-Organization`` header),
``OPENAI_PROJECT_ID`` or ``OPENAI_PROJECT`` (``OpenAI-Project`` header).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError, InvalidRequestError
from dsrs.transport import HttpRequest, HttpResponse, TransportError
from dsrs.types import LMRequest, LMResponse, Message, StreamChunk
from dsrs.wire import SSEDecoder, WireOptions, env_first
from dsrs_openai import responses
from dsrs_openai.catalog import OPENAI_BASE_URL
from dsrs_openai.chat import OpenAIChatProvider, dumps_body, without_none_options
from dsrs_openai.models import accepts_system_role, chat_profile, is_reasoning_model, uses_responses_api

__all__ = ["OPENAI_CHAT_OPTIONS", "OpenAIProvider", "OpenAIResponsesProvider"]

#: Chat Completions body fields accepted as provider options (``LM("gpt-4o", top_p=0.9)``).
OPENAI_CHAT_OPTIONS = frozenset(
    {
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "service_tier",
        "parallel_tool_calls",
        "reasoning_effort",
        "store",
        "metadata",
        "prediction",
        "verbosity",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "moderation",
        "safety_identifier",
        "web_search_options",
    }
)
_HEADER_OPTIONS = frozenset({"organization", "project"})


class OpenAIProvider(OpenAIChatProvider):
    """OpenAI's API: Chat Completions, or the Responses API (its own codec) for models that need it.

    One provider instance holds both codecs; which one a request uses is the model family's
    (:func:`~dsrs_openai.models.uses_responses_api`), or always Responses for ``openai-responses``.
    """

    default_base_url: ClassVar[str | None] = OPENAI_BASE_URL
    base_url_env: ClassVar[tuple[str, ...]] = ("OPENAI_BASE_URL",)
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    requires_api_key: ClassVar[bool] = True
    key_required_for_host: ClassVar[str | None] = "api.openai.com"
    known_options: ClassVar[frozenset[str]] = OPENAI_CHAT_OPTIONS
    client_options: ClassVar[frozenset[str]] = OpenAIChatProvider.client_options | _HEADER_OPTIONS
    #: Options of the Responses API (``reasoning_effort`` and ``verbosity`` are nested there).
    responses_options: ClassVar[frozenset[str]] = responses.RESPONSE_OPTIONS | frozenset(
        {"reasoning_effort", "verbosity"}
    )
    #: Always use the Responses API (the ``openai-responses`` provider).
    force_responses: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self._profiles: dict[str, WireOptions] = {}
        self.responses_codec = responses.ResponsesCodec(is_reasoning_model, secrets=self.secrets())

    def build_headers(self) -> dict[str, str]:
        headers = super().build_headers()
        opts = self.config.options
        org = opts.get("organization") or env_first(("OPENAI_ORG_ID", "OPENAI_ORGANIZATION"))
        project = opts.get("project") or env_first(("OPENAI_PROJECT_ID", "OPENAI_PROJECT"))
        if org:
            headers["openai-organization"] = str(org)
        if project:
            headers["openai-project"] = str(project)
        return headers

    def options_for(self, request: LMRequest) -> WireOptions:
        """The model family's profile (reasoning models: ``max_completion_tokens``, no temperature,
        system turns as ``user`` for o1-mini/o1-preview), computed once per model."""
        profile = self._profiles.get(request.model)
        if profile is None:
            if len(self._profiles) >= 256:  # bounded: model names come from callers
                self._profiles.clear()
            profile = self._profiles[request.model] = chat_profile(request.model, self._wire_options)
        return profile

    def uses_responses(self, request: LMRequest) -> bool:
        return self.force_responses or uses_responses_api(request.model)

    # --- the Responses API path ---------------------------------------------------------------

    def check_options(self, request: LMRequest) -> None:
        if not self.uses_responses(request):
            super().check_options(request)
            return
        allowed = self.responses_options | self.client_options
        unknown = sorted(k for k in request.options if k not in allowed)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidRequestError(
                f"{', '.join(map(repr, unknown))}{hint} not a parameter of the Responses API; known: "
                f"{', '.join(sorted(self.responses_options))}. Pass extra_body={{...}} to send fields verbatim.",
                provider=self.name,
                model=request.model,
            )

    def encode_json(self, request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
        if not self.uses_responses(request):
            return super().encode_json(request, stream=stream)
        if self._key_required and not self.config.api_key:
            raise AuthenticationError(
                f"no API key: set {' or '.join(self.api_key_env)}", provider=self.name, model=request.model
            )
        self.check_options(request)
        request = without_none_options(request)
        if not accepts_system_role(request.model):
            request = dataclasses.replace(
                request,
                messages=tuple(
                    Message("user", m.content) if m.role in ("system", "developer") else m for m in request.messages
                ),
            )
        return self.responses_codec.encode_body(request, stream=stream)

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        if not self.uses_responses(request):
            return super().encode(request, stream=stream)
        body = self.encode_json(request, stream=stream)
        headers = self.request_headers(request)
        if stream:
            headers = {**headers, "accept": "text/event-stream"}
        url = responses.responses_url(self.base_url)
        return HttpRequest("POST", url, headers, dumps_body(body), self.timeout)

    def decode(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        if not self.uses_responses(request):
            return super().decode(resp, request)
        return self.responses_codec.decode(request, resp)

    def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        # returns the chosen stream itself: no extra generator layer on the per-chunk path
        if self.uses_responses(request):
            return self._responses_stream(request)
        return super().astream(request)

    async def _responses_stream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        decoder = self.responses_codec.stream_decoder(request)
        sse = SSEDecoder()
        async with self.open_stream(self.encode(request, stream=True), request) as resp:
            try:
                if "json" in resp.headers.get("content-type", ""):  # a server that does not stream
                    response = self.decode(HttpResponse(resp.status, resp.headers, await resp.aread()), request)
                    yield StreamChunk(text=response.text, reasoning=response.reasoning or "", response=response)
                    return
                async for raw in resp.aiter_bytes():
                    for event in sse.iter_feed(raw):
                        chunk = decoder.feed(event)
                        if chunk is not None:
                            yield chunk
                for event in sse.close():
                    chunk = decoder.feed(event)
                    if chunk is not None:
                        yield chunk
            except TransportError as exc:
                raise self.failure(request, exception=exc) from None
        yield StreamChunk(response=decoder.finish())


class OpenAIResponsesProvider(OpenAIProvider):
    """OpenAI's Responses API (``POST /v1/responses``); registered as ``openai-responses``."""

    wire: ClassVar[str] = responses.WIRE
    force_responses: ClassVar[bool] = True

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self.url = responses.responses_url(self.base_url)

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Same account and endpoint as ``openai``: reported, but not a lane of its own in auto_detect."""
        result = await super().probe(spec, timeout)
        return dataclasses.replace(result, detail=f"{result.detail}; same account as the openai lane", lane=False)
