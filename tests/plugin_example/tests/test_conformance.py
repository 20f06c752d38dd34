"""The dsrs conformance kit, pointed at a loopback server speaking the Acme wire."""

from __future__ import annotations

import pytest

import dsrs
from dsrs.testing import LoopbackServer, ProviderConformance

KEY = "acme-test-key-0123456789abcdef"


class TestAcmeConformance(ProviderConformance):
    provider_name = "acme"
    supports_streaming = True
    supports_response_format = True
    supports_tools = True
    priced = True  # acme-large has a price in plugin.PRICES
    http_wire = True  # the kit also checks that a key echoed in 401/500 bodies never leaks

    # retries=0: a 500 in the key-echo checks is one request, not several with backoff.
    @pytest.fixture
    def lm(self, acme_server: LoopbackServer) -> dsrs.LM:
        return dsrs.LM("acme-large", base_url=acme_server.url, api_key=KEY, retries=0)

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM:
        return dsrs.LM("acme-large", base_url="http://127.0.0.1:9", api_key=KEY, retries=0)
