"""The OpenAI-compatible vendors: one provider class each, sharing the ``openai_chat`` codec.

Each has its base URL (overridable with ``<VENDOR>_BASE_URL``), its key (``<VENDOR>_API_KEY``), the
provider options its API documents, and its quirks:

* Groq — ``max_completion_tokens``; no ``name`` on messages; ``reasoning_format`` option;
* Cerebras — ``max_completion_tokens``; top-level error objects (read by :func:`dsrs.wire.openai_chat.classify`);
* OpenRouter — asks for usage accounting (``usage.include``) so the charged cost comes back;
* Together — Llama-style sampling options (``top_k``, ``repetition_penalty``, ``min_p``);
* DeepSeek — ``deepseek-reasoner`` takes no ``temperature``; cache hits in ``prompt_cache_hit_tokens``;
* xAI — reasoning tokens reported outside ``completion_tokens`` (normalised in the usage);
* Mistral — ``seed`` is ``random_seed``, ``tool_choice="required"`` is ``"any"``, no
  ``stream_options`` (usage comes on the last chunk anyway).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from dsrs.types import LMRequest
from dsrs.wire import WireOptions
from dsrs_openai.catalog import VendorInfo, vendor
from dsrs_openai.chat import OpenAIChatProvider

__all__ = [
    "CerebrasProvider",
    "DeepSeekProvider",
    "GroqProvider",
    "MistralProvider",
    "OpenRouterProvider",
    "TogetherProvider",
    "XAIProvider",
]

_COMMON = frozenset({"top_p", "frequency_penalty", "presence_penalty", "user", "parallel_tool_calls"})
#: Content parts each vendor's chat API takes besides text (its API reference): OpenAI and
#: OpenRouter take images, audio and files; Groq, Together, xAI and Mistral images (``image_url``);
#: Cerebras and DeepSeek text only. Anything else is refused before sending.
_IMAGES = frozenset({"image"})
_TEXT_ONLY: frozenset[str] = frozenset()


class _Vendor(OpenAIChatProvider):
    info: ClassVar[VendorInfo]
    requires_api_key: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        info = getattr(cls, "info", None)
        if info is not None:
            cls.default_base_url = info.base_url
            cls.base_url_env = info.base_url_env
            cls.api_key_env = info.api_key_env
            cls.key_required_for_host = info.base_url.split("/")[2]


class GroqProvider(_Vendor):
    info = vendor("groq")
    known_options = _COMMON | frozenset(
        {"reasoning_effort", "reasoning_format", "include_reasoning", "service_tier", "search_settings"}
    )
    wire_options = WireOptions(max_tokens_field="max_completion_tokens", parts=_IMAGES)
    stream_usage_key = "x_groq"

    def adjust_body(self, body: dict[str, Any], request: LMRequest, *, stream: bool) -> None:
        # Groq rejects messages[].name ("property 'name' is unsupported").
        body["messages"] = [{k: v for k, v in m.items() if k != "name"} for m in body["messages"]]


class CerebrasProvider(_Vendor):
    info = vendor("cerebras")
    known_options = frozenset(
        {"top_p", "user", "parallel_tool_calls", "reasoning_effort", "logprobs", "top_logprobs", "service_tier"}
    )
    wire_options = WireOptions(max_tokens_field="max_completion_tokens", parts=_TEXT_ONLY)


class OpenRouterProvider(_Vendor):
    info = vendor("openrouter")
    known_options = _COMMON | frozenset(
        {
            "top_k",
            "repetition_penalty",
            "min_p",
            "top_a",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "reasoning",
            "reasoning_effort",
            "provider",
            "models",
            "transforms",
            "route",
            "usage",
            "verbosity",
        }
    )

    def adjust_body(self, body: dict[str, Any], request: LMRequest, *, stream: bool) -> None:
        # Usage accounting: the response's usage then carries the charged cost in USD.
        body.setdefault("usage", {"include": True})


class TogetherProvider(_Vendor):
    info = vendor("together")
    known_options = _COMMON | frozenset(
        {"top_k", "repetition_penalty", "min_p", "logprobs", "logit_bias", "reasoning_effort", "safety_model"}
    )
    wire_options = WireOptions(parts=_IMAGES)


class DeepSeekProvider(_Vendor):
    info = vendor("deepseek")
    known_options = _COMMON | frozenset({"logprobs", "top_logprobs"})
    wire_options = WireOptions(parts=_TEXT_ONLY)

    def options_for(self, request: LMRequest) -> WireOptions:
        base = super().options_for(request)
        if request.model.startswith("deepseek-reasoner"):
            return dataclasses.replace(base, send_temperature=False)
        return base


class XAIProvider(_Vendor):
    info = vendor("xai")
    known_options = _COMMON | frozenset({"logprobs", "top_logprobs", "reasoning_effort", "search_parameters"})
    wire_options = WireOptions(parts=_IMAGES)


class MistralProvider(_Vendor):
    info = vendor("mistral")
    known_options = frozenset(
        {
            "top_p",
            "presence_penalty",
            "frequency_penalty",
            "safe_prompt",
            "parallel_tool_calls",
            "prediction",
            "prompt_mode",
            "reasoning_effort",
            "prompt_cache_key",
        }
    )
    wire_options = WireOptions(include_usage_in_stream=False, parts=_IMAGES)

    def adjust_body(self, body: dict[str, Any], request: LMRequest, *, stream: bool) -> None:
        if "seed" in body:
            body["random_seed"] = body.pop("seed")
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
