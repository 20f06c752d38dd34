"""The conformance kit can fail: a provider that leaks a key it read from the environment fails
the kit's key-echo check, and the same provider written as the plugin guide says passes it.

The leaky provider makes both mistakes the guide warns about: it puts the key in a header it does
not give to ``set_endpoint`` (so dsrs does not know it is a secret), and its classifier builds the
error from the server's body without ``secrets=failure.secrets``. A key given as ``api_key=`` would
still be caught by the ``config.api_key`` redaction; one read from ``LEAKY_API_KEY`` is not.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

import dsrs
from dsrs import ProviderConfig, ProviderSpec
from dsrs.errors import AuthenticationError, LMError, ProviderFailure, ProviderUnavailableError
from dsrs.plugins import hookimpl
from dsrs.testing import ProviderConformance, isolated_plugins
from dsrs.transport import HttpRequest
from dsrs.types import LMRequest
from dsrs.wire import HttpProvider, OpenAIChatCodec


class LeakyCodec(OpenAIChatCodec):
    wire = "leaky-chat"  # its own wire name, so no other classifier claims its failures

    def classify(self, failure: ProviderFailure) -> LMError | None:
        # The mistake: the server's body becomes the message, and no secrets are given.
        text = failure.body.decode("utf-8", "replace")
        cls = AuthenticationError if failure.status == 401 else ProviderUnavailableError
        return cls(f"rejected: {text}", provider=failure.provider, status=failure.status, body=failure.body)


class CarefulCodec(OpenAIChatCodec):
    wire = "careful-chat"

    def classify(self, failure: ProviderFailure) -> LMError | None:
        text = failure.body.decode("utf-8", "replace")
        cls = AuthenticationError if failure.status == 401 else ProviderUnavailableError
        return cls(
            f"rejected: {text}",
            provider=failure.provider,
            status=failure.status,
            body=failure.body,
            secrets=failure.secrets,
        )


class LeakyProvider(HttpProvider):
    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        self.key = config.api_key or os.environ.get("LEAKY_API_KEY")
        self.codec = LeakyCodec()
        self.set_endpoint(config.base_url or "http://127.0.0.1:9")  # the mistake: no auth header here

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        http = super().encode(request, stream=stream)
        return dataclasses.replace(http, headers={**http.headers, "authorization": f"Bearer {self.key}"})


class CarefulProvider(HttpProvider):
    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        key = config.api_key or os.environ.get("LEAKY_API_KEY")
        self.codec = CarefulCodec()
        self.set_endpoint(config.base_url or "http://127.0.0.1:9", {"authorization": f"Bearer {key}"})


class _Plugin:
    @hookimpl
    def dsrs_register_providers(self, register: object) -> None:
        for name, cls in (("leaky", LeakyProvider), ("careful", CarefulProvider)):
            register(ProviderSpec(name=name, factory=cls, env_vars=("LEAKY_API_KEY",), tier="local"))  # type: ignore[operator]


@pytest.fixture(autouse=True)
def _providers() -> Iterator[None]:
    with isolated_plugins(_Plugin()):
        yield


class LeakyKit(ProviderConformance):
    provider_name = "leaky"


class CarefulKit(ProviderConformance):
    provider_name = "careful"


@pytest.mark.parametrize("streamed", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("status", [401, 500])
def test_the_kit_fails_a_provider_that_leaks_an_environment_key(
    status: int, streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm = dsrs.LM("leaky:m", base_url="http://127.0.0.1:9", retries=0)
    with pytest.raises(AssertionError, match="the key appears in the error"):
        LeakyKit().test_echoed_key_never_in_the_error(lm, status, "environment", streamed, monkeypatch)


@pytest.mark.parametrize("key_from", ["api_key", "environment"])
@pytest.mark.parametrize("streamed", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("status", [401, 500])
def test_the_same_provider_done_as_the_guide_says_passes(
    status: int, streamed: bool, key_from: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm = dsrs.LM("careful:m", base_url="http://127.0.0.1:9", retries=0)
    CarefulKit().test_echoed_key_never_in_the_error(lm, status, key_from, streamed, monkeypatch)
