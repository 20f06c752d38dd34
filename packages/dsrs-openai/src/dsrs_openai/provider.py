"""OpenAI: Chat Completions by default, the Responses API for codex models and ``openai-responses:``.

``LM("gpt-4o")``, ``LM("openai:o3-mini", reasoning_effort="low")``, ``LM("codex-mini-latest")``
(Responses API), ``LM("openai-responses:gpt-4.1")`` (forced Responses API). Environment:
``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` (``OpenAI-Organization`` header),
``OPENAI_PROJECT_ID`` or ``OPENAI_PROJECT`` (``OpenAI-Project`` header).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError
from dsrs.transport import HttpRequest, TransportError
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
    """OpenAI's API. Chat Completions, or the Responses API for models that need it."""

    default_base_url: ClassVar[str | None] = OPENAI_BASE_URL
    base_url_env: ClassVar[tuple[str, ...]] = ("OPENAI_BASE_URL",)
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    requires_api_key: ClassVar[bool] = True
    key_required_for_host: ClassVar[str | None] = "api.openai.com"
    known_options: ClassVar[frozenset[str]] = OPENAI_CHAT_OPTIONS
    client_options: ClassVar[frozenset[str]] = OpenAIChatProvider.client_options | _HEADER_OPTIONS
    #: Always use the Responses API (the ``openai-responses`` provider).
    force_responses: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self._responses: OpenAIResponsesProvider | None = None
        self._profiles: dict[str, WireOptions] = {}

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
            profile = self._profiles[request.model] = chat_profile(request.model, self._wire_options)
        return profile

    def responses_api(self) -> OpenAIResponsesProvider:
        if self._responses is None:
            self._responses = OpenAIResponsesProvider(self.spec, self.config)
        return self._responses

    def _use_responses(self, request: LMRequest) -> bool:
        return self.force_responses or uses_responses_api(request.model)

    async def acomplete(self, request: LMRequest) -> LMResponse:
        if self._use_responses(request):
            return await self.responses_api().acomplete(request)
        return await super().acomplete(request)

    def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        # returns the chosen stream itself: no extra generator layer on the per-chunk path
        if self._use_responses(request):
            return self.responses_api().astream(request)
        return super().astream(request)


class OpenAIResponsesProvider(OpenAIProvider):
    """OpenAI's Responses API (``POST /v1/responses``); registered as ``openai-responses``."""

    wire: ClassVar[str] = responses.WIRE
    known_options: ClassVar[frozenset[str]] = responses.RESPONSE_OPTIONS | frozenset({"reasoning_effort", "verbosity"})
    force_responses: ClassVar[bool] = True

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self.url = responses.responses_url(self.base_url)

    def responses_api(self) -> OpenAIResponsesProvider:
        return self

    def encode_json(self, request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
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
        return responses.encode_body(request, stream=stream, reasoning=is_reasoning_model(request.model))

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        body = self.encode_json(request, stream=stream)
        headers = self.request_headers(request)
        if stream:
            headers = {**headers, "accept": "text/event-stream"}
        return HttpRequest("POST", self.url, headers, dumps_body(body), self.timeout)

    async def acomplete(self, request: LMRequest) -> LMResponse:
        resp = await self.send(self.encode(request), request)
        return responses.decode_response(
            resp.status, resp.headers, resp.content, provider=self.name, model=request.model
        )

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        decoder = responses.ResponsesStreamDecoder(provider=self.name, model=request.model)
        sse = SSEDecoder()
        async with self.open_stream(self.encode(request, stream=True), request) as resp:
            try:
                if "json" in resp.headers.get("content-type", ""):
                    body = await resp.aread()
                    response = responses.decode_response(
                        resp.status, resp.headers, body, provider=self.name, model=request.model
                    )
                    yield StreamChunk(text=response.text, reasoning=response.reasoning or "", response=response)
                    return
                async for raw in resp.aiter_bytes():
                    for event in sse.iter_feed(raw):
                        chunk = decoder.feed(event.data)
                        if chunk is not None:
                            yield chunk
                for event in sse.close():
                    chunk = decoder.feed(event.data)
                    if chunk is not None:
                        yield chunk
            except TransportError as exc:
                raise self.failure(request, exception=exc) from None
        yield StreamChunk(response=decoder.finish())

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Same account and endpoint as ``openai``: reported, but not a lane of its own in auto_detect."""
        result = await super().probe(spec, timeout)
        return dataclasses.replace(result, detail=f"{result.detail}; same account as the openai lane", lane=False)
