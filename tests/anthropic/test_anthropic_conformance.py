"""The dsrs provider conformance kit, run against a loopback server speaking the Messages API wire."""

from __future__ import annotations

import pytest

import dsrs
from dsrs.testing import LoopbackServer, ProviderConformance


class TestAnthropicConformance(ProviderConformance):
    provider_name = "anthropic"
    supports_streaming = True
    supports_response_format = True
    supports_tools = True
    priced = True  # claude-sonnet-4-5 is in the price table

    @pytest.fixture
    def lm(self, anthropic_server: LoopbackServer, key: str) -> dsrs.LM:
        return dsrs.LM("claude-sonnet-4-5", base_url=anthropic_server.url, api_key=key)

    @pytest.fixture
    def unreachable_lm(self, key: str) -> dsrs.LM:
        return dsrs.LM("claude-sonnet-4-5", base_url="http://127.0.0.1:9", api_key=key)


class TestAnthropicForcedToolConformance(TestAnthropicConformance):
    """The same kit on a model without native JSON output: the schema travels as a forced tool."""

    @pytest.fixture
    def lm(self, anthropic_server: LoopbackServer, key: str) -> dsrs.LM:
        return dsrs.LM("anthropic:claude-opus-4-1", base_url=anthropic_server.url, api_key=key)
