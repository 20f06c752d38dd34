"""The dsrs conformance kit, for OpenAI (chat and Responses) and the vendors, over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import dsrs
from dsrs.testing import LoopbackServer, ProviderConformance
from dsrs_openai.testing import openai_server

KEY = "sk-loopback-key-0123456789"


@pytest.fixture(scope="module")
def wire() -> Iterator[LoopbackServer]:
    with openai_server() as srv:
        yield srv


class _Loopback(ProviderConformance):
    model: ClassVar[str] = ""
    supports_response_format = True
    supports_tools = True

    @pytest.fixture
    def lm(self, wire: Any) -> dsrs.LM:
        return dsrs.LM(self.model, base_url=wire.url, api_key=KEY)

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM:
        return dsrs.LM(self.model, base_url="http://127.0.0.1:9", api_key=KEY)


class TestOpenAIChatConformance(_Loopback):
    provider_name = "openai"
    model = "gpt-4o-mini"


class TestOpenAICodexModelConformance(_Loopback):
    provider_name = "openai"
    model = "codex-mini-latest"


class TestOpenAIResponsesConformance(_Loopback):
    provider_name = "openai-responses"
    model = "openai-responses:gpt-4.1-mini"


class TestGroqConformance(_Loopback):
    provider_name = "groq"
    model = "groq/llama-3.1-8b-instant"


class TestCerebrasConformance(_Loopback):
    provider_name = "cerebras"
    model = "cerebras:llama3.1-8b"


class TestMistralConformance(_Loopback):
    provider_name = "mistral"
    model = "mistral:mistral-small-latest"


class TestDeepSeekConformance(_Loopback):
    provider_name = "deepseek"
    model = "deepseek:deepseek-chat"


class TestTogetherUnpricedConformance(_Loopback):
    provider_name = "together"
    model = "together:some/unpriced-model"
    priced = False


class TestXAIConformance(_Loopback):
    provider_name = "xai"
    model = "xai:grok-3-mini"


class TestOpenRouterConformance(_Loopback):
    provider_name = "openrouter"
    model = "openrouter/openai/gpt-4o-mini"
