"""Model strings: canonical, slash form, bare patterns, base_url fallback, and helpful errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dsrs
from dsrs.plugins import hookimpl
from dsrs.testing import isolated_plugins


class Vendors:
    @hookimpl
    def dsrs_register_providers(self, register: object) -> None:
        for spec in (
            dsrs.ProviderSpec(
                name="openai",
                factory="dsrs._builtin.fake:FakeProvider",
                patterns=("gpt-*", "o1*"),
                tier="premium",
                priority=30,
            ),
            dsrs.ProviderSpec(name="groq", factory="dsrs._builtin.fake:FakeProvider"),
            dsrs.ProviderSpec(name="ollama", factory="dsrs._builtin.fake:FakeProvider", tier="local"),
            dsrs.ProviderSpec(
                name="gptoss", factory="dsrs._builtin.fake:FakeProvider", prefixes=("gpt-oss",), tier="local"
            ),
            dsrs.ProviderSpec(name="pylon", factory="dsrs._builtin.fake:FakeProvider", tier="swarm"),
        ):
            register(spec)  # type: ignore[operator]


@pytest.fixture(autouse=True)
def vendors() -> Iterator[None]:
    with isolated_plugins(Vendors()):
        yield


@pytest.mark.parametrize(
    ("model", "provider", "native"),
    [
        ("openai:gpt-4o", "openai", "gpt-4o"),
        ("gpt-4-turbo", "openai", "gpt-4-turbo"),  # bare name through a pattern
        ("o1-mini", "openai", "o1-mini"),
        ("ollama/llama2", "ollama", "llama2"),  # the seed's form; the original sent this to OpenAI
        ("ollama:llama2", "ollama", "llama2"),
        ("groq/mixtral-8x7b", "groq", "mixtral-8x7b"),
        ("gptoss:gpt-oss-20b", "gptoss", "gpt-oss-20b"),
        ("gpt-oss:gpt-oss-20b", "gptoss", "gpt-oss-20b"),
        ("pylon:local:llama2", "pylon", "local:llama2"),
        ("fake:echo", "fake", "echo"),
    ],
)
def test_resolution(model: str, provider: str, native: str) -> None:
    lm = dsrs.LM(model)
    assert (lm.provider_name, lm.resolved.model) == (provider, native)


def test_base_url_without_prefix_uses_builtin_openai_compatible() -> None:
    lm = dsrs.LM("my-local-model", base_url="http://127.0.0.1:8000")
    assert lm.provider_name == "openai-compatible" and lm.resolved.model == "my-local-model"


def test_base_url_with_known_prefix_keeps_the_provider() -> None:
    assert dsrs.LM("ollama/llama2").with_base_url("http://localhost:11434").provider_name == "ollama"


def test_unknown_model_names_installed_providers_and_install_hint() -> None:
    with pytest.raises(dsrs.UnknownModelError) as info:
        dsrs.LM("gemini-1.5-pro").provider_name  # noqa: B018
    err = info.value
    assert err.install_hint == "dsrs-google"
    assert "pip install dsrs-google" in str(err)
    assert {"openai", "ollama", "fake"} <= set(err.installed)


def test_unknown_prefix_suggests_closest() -> None:
    with pytest.raises(dsrs.UnknownModelError) as info:
        dsrs.LM("olama:llama2").provider_name  # noqa: B018
    assert info.value.suggestion == "ollama"
    assert "Did you mean 'ollama'" in str(info.value)


def test_empty_model_is_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="model must not be empty"):
        dsrs.LM("  ")


def test_providers_are_in_lane_order() -> None:
    tiers = [s.tier for s in dsrs.providers()]
    assert tiers == sorted(tiers, key=dsrs.TIERS.index)


def test_provider_spec_validation() -> None:
    with pytest.raises(ValueError, match="provider name"):
        dsrs.ProviderSpec(name="a:b", factory="x:y")
    with pytest.raises(ValueError, match="tier"):
        dsrs.ProviderSpec(name="ab", factory="x:y", tier="gold")  # type: ignore[arg-type]
