"""dsrs-pylon passes the provider conformance kit: a swarm LM served by a DVM over a loopback relay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import ProviderConformance
from dsrs_pylon import PylonLM
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.testing import LoopbackRelay, free_port

from .conftest import DvmThread


class TestPylonConformance(ProviderConformance):
    provider_name = "pylon"
    http_wire = False  # Nostr relays over websockets; its key tests are in test_pylon_swarm.py
    supports_streaming = True
    reports_usage = True  # our DVM reports token counts in a `usage` tag
    priced = True  # the msats actually paid (0 for a free job)

    @pytest.fixture
    def lm(self) -> Iterator[dsrs.LM]:
        with LoopbackRelay() as relay, DvmThread(lambda: DvmService(dsrs.LM("fake:echo"), [relay.url])) as dvm:
            yield PylonLM.new_swarm(relay.url).with_targets(dvm.public_key).with_timeout(10)

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM:
        return PylonLM.new_swarm(f"ws://127.0.0.1:{free_port()}")
