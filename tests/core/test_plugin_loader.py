"""The plugin loader: real entry points (dist-info on sys.path), defensive loading, the env switches."""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs import _registry as registry
from dsrs import _runtime
from dsrs.plugins import DsrsPluginWarning, PluginLoadError, _manager, hookimpl, hooks, register_plugin
from dsrs.plugins.hookspecs import HOOK_NAMES


def _make_dist(root: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[dsrs]\n{eps}\n")
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))


GOOD = """
from dsrs import ProviderSpec
from dsrs.plugins import hookimpl

@hookimpl
def dsrs_register_providers(register):
    register(ProviderSpec(name="goodone", factory="dsrs._builtin.fake:FakeProvider", tier="balanced"))
"""
RAISES_ON_REGISTER = """
from dsrs.plugins import hookimpl

@hookimpl
def dsrs_register_providers(register):
    raise RuntimeError("boom in register")
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where tests install fake distributions with dsrs entry points."""
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = _runtime.runtime().host
    yield tmp_path
    _runtime.runtime().host = saved
    registry.invalidate()
    for name in ("good_plugin_mod", "raising_plugin_mod"):
        sys.modules.pop(name, None)


def test_broken_plugin_warns_with_distribution_and_others_load(site: Path) -> None:
    _make_dist(site, "broken-dist", "9.9", {"brokenone": "module_that_does_not_exist_xyz"}, {})
    _make_dist(site, "good-dist", "1.0", {"goodone": "good_plugin_mod"}, {"good_plugin_mod": GOOD})
    with pytest.warns(DsrsPluginWarning, match=r"brokenone.*broken-dist 9\.9"):
        _manager.reset_host()
    names = {s.name: s for s in dsrs.providers()}
    assert "goodone" in names and names["goodone"].distribution == "good-dist"
    assert "fake" in names  # dsrs-core's own plugin loads through the same path
    info = {p.name: p for p in _manager.get_host().plugins}
    assert info["brokenone"].broken and "ModuleNotFoundError" in (info["brokenone"].error or "")


def test_strict_mode_raises(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_dist(site, "broken-dist", "9.9", {"brokenone": "module_that_does_not_exist_xyz"}, {})
    monkeypatch.setenv("DSRS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="broken-dist"):
        _manager.reset_host()


def test_disable_list_blocks_by_entry_point_or_distribution(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_dist(site, "broken-dist", "9.9", {"brokenone": "module_that_does_not_exist_xyz"}, {})
    _make_dist(site, "good-dist", "1.0", {"goodone": "good_plugin_mod"}, {"good_plugin_mod": GOOD})
    monkeypatch.setenv("DSRS_DISABLE_PLUGINS", "brokenone, good-dist")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _manager.reset_host()
    names = {s.name for s in dsrs.providers()}
    assert "goodone" not in names and "fake" in names


def test_autoload_off_keeps_only_core(site: Path) -> None:
    _make_dist(site, "good-dist", "1.0", {"goodone": "good_plugin_mod"}, {"good_plugin_mod": GOOD})
    _manager.reset_host(autoload=False)
    names = {s.name for s in dsrs.providers()}
    assert "goodone" not in names and {"fake", "openai-compatible"} <= names


def test_plugin_failing_in_register_is_isolated(site: Path) -> None:
    _make_dist(
        site, "raising-dist", "0.1", {"raising": "raising_plugin_mod"}, {"raising_plugin_mod": RAISES_ON_REGISTER}
    )
    _make_dist(site, "good-dist", "1.0", {"goodone": "good_plugin_mod"}, {"good_plugin_mod": GOOD})
    _manager.reset_host()
    with pytest.warns(DsrsPluginWarning, match="raising.*raising-dist.*boom"):
        names = {s.name for s in dsrs.providers()}
    assert "goodone" in names
    assert any(name == "raising" for name, _ in registry.get_registry().broken)


def test_registry_is_built_once(site: Path) -> None:
    _manager.reset_host(autoload=False)
    calls = []

    class Counting:
        @hookimpl
        def dsrs_register_providers(self, register: object) -> None:
            calls.append(1)

    register_plugin(Counting(), name="counting")
    dsrs.providers()
    dsrs.providers()
    dsrs.LM("fake:echo").resolved  # noqa: B018
    assert calls == [1]


def test_check_pending_catches_misspelled_hook(site: Path) -> None:
    from pluggy import PluginValidationError

    _manager.reset_host(autoload=False)

    class Typo:
        @hookimpl
        def dsrs_costt(self, model: str) -> None: ...

    with pytest.raises(PluginValidationError, match="dsrs_costt"):
        register_plugin(Typo(), name="typo")


def test_every_hook_is_documented_and_listed() -> None:
    from dsrs.plugins import hookspecs

    specs = sorted(n for n in dir(hookspecs) if n.startswith("dsrs_"))
    assert sorted(HOOK_NAMES) == specs
    for name in HOOK_NAMES:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.strip()) > 40, f"{name} needs a real docstring"
        assert name in (hookspecs.__doc__ or ""), f"{name} missing from the module overview"


def test_failing_usage_sink_is_warned_not_raised(site: Path) -> None:
    _manager.reset_host(autoload=False)
    seen: list[dsrs.UsageRecord] = []

    class Sinks:
        @hookimpl
        def dsrs_usage_recorded(self, record: dsrs.UsageRecord) -> None:
            seen.append(record)

    class Broken:
        @hookimpl
        def dsrs_usage_recorded(self, record: dsrs.UsageRecord) -> None:
            raise RuntimeError("sink down")

    register_plugin(Sinks(), name="sinks")
    register_plugin(Broken(), name="broken-sink")
    with pytest.warns(DsrsPluginWarning, match="sink down"):
        r = dsrs.LM("fake:echo").call("one two")
    assert r.text == "one two"
    assert len(seen) == 1 and seen[0].provider == "fake" and seen[0].usage.cost_msats == r.usage.cost_msats
    assert hooks().has_usage_sinks


def test_cost_hook_tryfirst_overrides_builtin_pricing(site: Path) -> None:
    _manager.reset_host(autoload=False)

    class Pricing:
        @hookimpl(tryfirst=True)
        def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
            return dsrs.Cost(msats=1000) if model == "fake:echo" else None

    register_plugin(Pricing(), name="pricing")
    assert dsrs.LM("fake:echo").call("x").usage.cost_msats == 1000
    assert dsrs.LM("fake:other").call("x").usage.cost_msats == 1 + 2  # builtin: 1 prompt + 1 completion token
