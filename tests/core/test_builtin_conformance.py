"""The conformance kit run against dsrs-core's own providers (fake, and openai-compatible on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import LoopbackServer, ProviderConformance, openai_wire_server


class TestFakeConformance(ProviderConformance):
    provider_name = "fake"
    http_wire = False  # answers in-process

    @pytest.fixture
    def lm(self) -> dsrs.LM:
        return dsrs.LM("fake:echo")


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with openai_wire_server() as srv:
        yield srv


class TestOpenAICompatibleConformance(ProviderConformance):
    provider_name = "openai-compatible"
    priced = False  # a model on an arbitrary server has no known price: cost must be None

    @pytest.fixture
    def lm(self, server: LoopbackServer) -> dsrs.LM:
        return dsrs.LM("loopback-model", base_url=server.url)

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM:
        return dsrs.LM("loopback-model", base_url="http://127.0.0.1:9")
