"""The dsrs provider conformance kit, run against a loopback server speaking the Gemini wire."""

from __future__ import annotations

import pytest

import dsrs
from dsrs.testing import LoopbackServer, ProviderConformance


class TestGeminiConformance(ProviderConformance):
    provider_name = "google"
    supports_streaming = True
    supports_response_format = True
    supports_tools = True
    priced = True  # gemini-2.5-flash is in the price table

    @pytest.fixture
    def lm(self, gemini_server: LoopbackServer, key: str) -> dsrs.LM:
        return dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key)

    @pytest.fixture
    def unreachable_lm(self, key: str) -> dsrs.LM:
        return dsrs.LM("gemini-2.5-flash", base_url="http://127.0.0.1:9", api_key=key)
