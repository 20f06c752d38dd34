"""The dsrs provider conformance kit, run against a loopback server speaking Ollama's API."""

from __future__ import annotations

import pytest

import dsrs
from dsrs.testing import LoopbackServer, ProviderConformance


class TestOllamaConformance(ProviderConformance):
    provider_name = "ollama"
    supports_streaming = True
    supports_response_format = True
    supports_tools = True
    priced = True  # local: a known price of 0

    @pytest.fixture
    def lm(self, ollama_server: LoopbackServer) -> dsrs.LM:
        return dsrs.LM("ollama:llama2", base_url=ollama_server.url)

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM:
        return dsrs.LM("ollama:llama2", base_url="http://127.0.0.1:9")
