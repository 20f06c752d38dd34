"""LaneMux.auto_detect: concurrent probes, tier order, unreachable and failing probes, describe()."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

import dsrs
from dsrs._lanemux import LaneMux
from dsrs._provider import ProbeResult, Provider, ProviderSpec
from dsrs.plugins import hookimpl
from dsrs.testing import isolated_plugins
from dsrs.types import LMRequest, LMResponse

PROBE_TIMEOUT = 0.5


class _Base(Provider):
    behaviour: ClassVar[str] = "ok"

    async def acomplete(self, request: LMRequest) -> LMResponse:
        return LMResponse(text=f"{self.name} says hi")

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        if cls.behaviour == "hang":
            await asyncio.sleep(3600)
        if cls.behaviour == "raise":
            raise ConnectionRefusedError("connection refused by 127.0.0.1:9")
        if cls.behaviour == "down":
            return ProbeResult(True, False, None, "GET /health: connection refused")
        if cls.behaviour == "nokey":
            return ProbeResult(False, None, None, "set ACME_API_KEY")
        if cls.behaviour == "unchecked":
            return ProbeResult(True, None, None, "key present")
        await asyncio.sleep(PROBE_TIMEOUT / 2)
        return ProbeResult(True, True, 12.0, "ok", "model-1")


def provider(behaviour: str) -> type[Provider]:
    return type(f"P_{behaviour}", (_Base,), {"behaviour": behaviour})


class ProbePlugin:
    """Six providers in scrambled tier order: three answer, three never do."""

    specs: ClassVar[list[ProviderSpec]] = [
        ProviderSpec("swarmy", provider("ok"), tier="swarm"),
        ProviderSpec("hang1", provider("hang"), tier="premium"),
        ProviderSpec("localy", provider("ok"), tier="local"),
        ProviderSpec("hang2", provider("hang"), tier="balanced"),
        ProviderSpec("premo", provider("unchecked"), tier="premium", default_model="big"),
        ProviderSpec("hang3", provider("hang"), tier="local"),
        ProviderSpec("broken", provider("raise"), tier="balanced"),
        ProviderSpec("down", provider("down"), tier="local"),
        ProviderSpec("nokey", provider("nokey"), tier="premium"),
        ProviderSpec("nomodel", provider("unchecked"), tier="balanced"),
    ]

    @hookimpl
    def dsrs_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        for spec in self.specs:
            register(spec)


@pytest.fixture
def plugins() -> Iterator[None]:
    with isolated_plugins(ProbePlugin()):
        yield


@pytest.mark.usefixtures("plugins")
async def test_probes_run_concurrently_and_lanes_follow_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSRS_FAKE_LANE", raising=False)
    t0 = time.perf_counter()
    mux = await LaneMux.auto_detect(timeout=PROBE_TIMEOUT)
    elapsed = time.perf_counter() - t0
    # Three probes never answer; one at a time would take >= 3 timeouts.
    assert elapsed < 2 * PROBE_TIMEOUT
    assert mux.lane_names == ("premo", "localy", "swarmy")
    assert [lane.tier for lane in mux.lanes] == ["premium", "local", "swarm"]
    assert mux.lane("premo").lm.model == "premo:big"
    assert mux.lane("localy").lm.model == "localy:model-1"
    assert (await mux.acall("x")).text == "premo says hi"


@pytest.mark.usefixtures("plugins")
def test_describe_explains_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSRS_FAKE_LANE", raising=False)
    mux = LaneMux.auto_detect_sync(timeout=PROBE_TIMEOUT)
    text = mux.describe()
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and "tier=" not in line}
    assert "no answer within 0.5s" in lines["hang1"]
    assert "ConnectionRefusedError" in lines["broken"]
    assert "configured, not reachable: GET /health" in lines["down"]
    assert "not configured: set ACME_API_KEY" in lines["nokey"]
    assert "no model to use" in lines["nomodel"]
    assert "lane 'premo'" in lines["premo"] and "not checked" in lines["premo"]
    assert "lane 'localy'" in lines["localy"]
    assert "fake" in lines  # dsrs-core's own test provider, not configured
    assert "DSRS_FAKE_LANE" in lines["fake"]
    assert "1. premo" in text


@pytest.mark.usefixtures("plugins")
async def test_include_and_exclude() -> None:
    mux = await LaneMux.auto_detect(timeout=PROBE_TIMEOUT, include=["localy", "swarmy", "hang1"])
    assert mux.lane_names == ("localy", "swarmy")
    mux = await LaneMux.auto_detect(timeout=PROBE_TIMEOUT, exclude=["premo"], budget_msats=10)
    assert "premo" not in mux.lane_names
    assert mux.budget_msats == 10


async def test_fake_lane_with_dsrs_fake_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    with isolated_plugins():
        monkeypatch.setenv("DSRS_FAKE_LANE", "1")
        mux = await LaneMux.auto_detect(timeout=PROBE_TIMEOUT)
        assert mux.lane_names == ("fake",)
        assert mux.lane("fake").tier == "local"
        r = await mux.acall("echo me")
        assert (r.text, r.lane) == ("echo me", "fake")
        monkeypatch.delenv("DSRS_FAKE_LANE")
        empty = await LaneMux.auto_detect(timeout=PROBE_TIMEOUT)
        assert empty.lane_names == ()
        with pytest.raises(dsrs.AllLanesFailedError, match="no lane available"):
            await empty.acall("x")


class _SyncProbe(_Base):
    @classmethod
    def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:  # type: ignore[override]
        return ProbeResult(True, True, 1.0, "ok", "m")  # a plugin author's easy mistake: not async


class _SyncProbePlugin:
    @hookimpl
    def dsrs_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(ProviderSpec("syncy", _SyncProbe, tier="local"))


async def test_a_sync_probe_is_reported_as_such_not_dropped_silently() -> None:
    with isolated_plugins(_SyncProbePlugin()):
        mux = await LaneMux.auto_detect(timeout=PROBE_TIMEOUT, include=["syncy"])
    assert mux.lane_names == ()
    (report,) = mux.probes
    assert (
        report.error
        == "probe failed: TypeError: _SyncProbe.probe must be an async classmethod (it returned a ProbeResult)"
    )
    assert "must be an async classmethod" in mux.describe()
