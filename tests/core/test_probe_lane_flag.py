"""auto_detect: a provider probing ``lane=False`` is reported but gets no lane; probe models win."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

import dsrs
from dsrs._builtin.fake import FakeProvider
from dsrs.plugins import hookimpl
from dsrs.testing import isolated_plugins


class Alias(FakeProvider):
    @classmethod
    async def probe(cls, spec: dsrs.ProviderSpec, timeout: float) -> dsrs.ProbeResult:
        return dsrs.ProbeResult(True, True, 1.0, "same account as 'main'", lane=False)


class Main(FakeProvider):
    served: ClassVar[str | None] = "loaded-model"

    @classmethod
    async def probe(cls, spec: dsrs.ProviderSpec, timeout: float) -> dsrs.ProbeResult:
        return dsrs.ProbeResult(True, True, 1.0, "ok", cls.served)


class Plugin:
    @hookimpl
    def dsrs_register_providers(self, register: object) -> None:
        register(dsrs.ProviderSpec(name="main", factory=Main, default_model="echo"))  # type: ignore[operator]
        register(dsrs.ProviderSpec(name="alias", factory=Alias, default_model="echo"))  # type: ignore[operator]


@pytest.fixture(autouse=True)
def plugins() -> Iterator[None]:
    with isolated_plugins(Plugin()):
        yield


def test_alias_is_reported_but_not_a_lane() -> None:
    mux = dsrs.LaneMux.auto_detect_sync(timeout=1.0)
    assert mux.lane_names == ("main",)
    assert "same account as 'main'" in mux.describe()


def test_probe_model_is_the_lane_model_else_the_default() -> None:
    assert dsrs.LaneMux.auto_detect_sync(timeout=1.0).lane("main").lm.model == "main:loaded-model"
    Main.served = None
    try:
        assert dsrs.LaneMux.auto_detect_sync(timeout=1.0).lane("main").lm.model == "main:echo"
    finally:
        Main.served = "loaded-model"
