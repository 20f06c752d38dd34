"""Local and hybrid modes: delegation through the registry, fallback to the swarm, install hints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dsrs
from dsrs_pylon import PylonLM, provider
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.testing import LoopbackRelay

from .conftest import DvmThread


@pytest.fixture
def relay_dvm(relay: LoopbackRelay) -> Iterator[tuple[LoopbackRelay, DvmService]]:
    with DvmThread(lambda: DvmService(dsrs.LM("fake:script", responses=["from the swarm"]), [relay.url])) as dvm:
        yield relay, dvm


def test_local_mode_delegates_to_the_backend() -> None:
    lm = PylonLM.new_local().with_backend("fake").with_model("echo")
    r = lm.call("local please")
    assert r.text == "local please" and r.provider == "pylon" and r.model == "local:echo"
    assert r.usage.detail["pylon_path"] == "local" and r.usage.detail["local_backend"] == "fake:echo"
    assert r.usage.prompt_tokens == 2 and r.usage.cost_msats is not None


def test_local_mode_streams_the_backend() -> None:
    stream = PylonLM.new_local().with_backend("fake").with_model("echo").stream("stream this locally")
    deltas = list(stream)
    assert deltas == ["stream ", "this ", "locally"]  # the backend's own deltas, one per word
    assert stream.response is not None and stream.response.provider == "pylon"
    assert stream.response.text == "stream this locally"
    assert stream.response.usage.detail["local_backend"] == "fake:echo"


def test_local_mode_without_a_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        provider, "LOCAL_BACKENDS", (("no-such-ollama", "dsrs-ollama"), ("no-such-gptoss", "dsrs-gptoss"))
    )
    with pytest.raises(dsrs.UnknownModelError) as info:
        PylonLM.new_local().call("x")
    assert "pip install dsrs-ollama" in str(info.value) and "dsrs-gptoss" in str(info.value)


def test_local_mode_unknown_backend_is_unknown_model() -> None:
    with pytest.raises(dsrs.UnknownModelError):
        PylonLM.new_local().with_backend("nonexistent").with_model("m").call("x")


def test_hybrid_prefers_local(relay_dvm: tuple[LoopbackRelay, DvmService]) -> None:
    relay, _ = relay_dvm
    lm = PylonLM.new_hybrid(relay.url).with_backend("fake").with_model("echo").with_local_timeout(2)
    r = lm.call("fast local")
    assert r.text == "fast local" and r.usage.detail["pylon_path"] == "local"


def test_hybrid_falls_back_when_local_is_slow(relay_dvm: tuple[LoopbackRelay, DvmService]) -> None:
    relay, dvm = relay_dvm
    lm = (
        PylonLM.new_hybrid(relay.url)
        .with_backend("fake")
        .with_model("echo")
        .with_options(local_options={"delay": 2.0})
        .with_local_timeout(0.2)
        .with_timeout(10)
    )
    r = lm.call("slow local")
    assert r.text == "from the swarm"
    assert r.usage.detail["pylon_path"] == "swarm" and "0.2s" in r.usage.detail["local_error"]
    assert r.usage.detail["provider_pubkey"] == dvm.public_key
    assert r.usage.detail["local_elapsed_s"] < 1.0


@pytest.mark.parametrize("backend", ["nonexistent", "ollama"])
def test_hybrid_falls_back_when_local_is_absent(
    relay_dvm: tuple[LoopbackRelay, DvmService], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay, _ = relay_dvm
    lm = PylonLM.new_hybrid(relay.url).with_backend(backend).with_model("llama2").with_timeout(10)
    if backend == "ollama":
        if "ollama" not in dsrs._registry.get_registry():
            pytest.skip("dsrs-ollama not installed")
        lm = lm.with_options(local_base_url="http://127.0.0.1:9")  # nothing listens: server down
    r = lm.call("where is local?")
    assert r.text == "from the swarm" and r.usage.detail["pylon_path"] == "swarm"
    assert r.usage.detail["local_error"]


def test_hybrid_without_fallback_raises_the_local_error() -> None:
    lm = (
        PylonLM.new_hybrid("ws://127.0.0.1:9")
        .with_backend("fake")
        .with_model("echo")
        .with_options(local_options={"delay": 2.0})
        .with_local_timeout(0.1)
        .with_swarm_fallback(False)
    )
    with pytest.raises(dsrs.LMTimeoutError, match="local backend did not answer"):
        lm.call("x")


def test_no_relay_configured_is_a_clear_error() -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="PYLON_RELAY_URL"):
        dsrs.LM("pylon:swarm").call("x")


def test_relay_from_env(relay_dvm: tuple[LoopbackRelay, DvmService], monkeypatch: pytest.MonkeyPatch) -> None:
    relay, _ = relay_dvm
    monkeypatch.setenv("PYLON_RELAY_URL", f"ws://127.0.0.1:9, {relay.url}")
    r = dsrs.LM("pylon:swarm", timeout=10).call("env relays")
    assert r.text == "from the swarm"


def test_probe_reports_relays(relay: LoopbackRelay, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    spec = next(s for s in dsrs.providers() if s.name == "pylon")
    cls = spec.load()
    assert asyncio.run(cls.probe(spec, 1.0)).configured is False
    monkeypatch.setenv("PYLON_RELAY_URL", relay.url)
    result = asyncio.run(cls.probe(spec, 1.0))
    assert result.configured and result.reachable
    monkeypatch.setenv("PYLON_RELAY_URL", "ws://127.0.0.1:9")
    result = asyncio.run(cls.probe(spec, 1.0))
    assert result.configured and result.reachable is False


def test_pylon_lm_is_a_lanemux_lane(relay_dvm: tuple[LoopbackRelay, DvmService]) -> None:
    if not hasattr(dsrs, "LaneMux"):
        pytest.skip("dsrs.LaneMux has not landed yet")
    relay, dvm = relay_dvm
    mux = (
        dsrs.LaneMux()
        .add_lane("fast", dsrs.LM("fake:echo", fail="auth"))
        .add_lane("cheap", PylonLM.new_swarm(relay.url).with_timeout(10))
        .add_lane("local", PylonLM.new_local().with_backend("fake").with_model("echo"))
    )
    r = mux.call("through the mux")
    assert r.text == "from the swarm" and r.lane == "cheap"
    assert r.usage.detail["provider_pubkey"] == dvm.public_key
    assert mux.call("forced local", lane="local").text == "forced local"
