"""``dsrs_cost`` is dispatched on every call without pluggy's generic loop; the semantics must not move.

The fast path (a cached plan of plain implementations) has to behave exactly like pluggy: order,
first non-``None`` wins, partial signatures, wrappers, tracing monitors, plugins added or removed
between calls, and a failing pricer warns instead of failing the call.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

import dsrs
from dsrs import _registry as registry
from dsrs import _runtime
from dsrs.plugins import DsrsPluginWarning, _manager, hookimpl, hooks, prices, register_plugin, unregister_plugin


@pytest.fixture(autouse=True)
def fresh_host() -> Iterator[None]:
    saved = _runtime.runtime().host
    _manager.reset_host(autoload=False)
    yield
    _runtime.runtime().host = saved
    registry.invalidate()


def _cost(model: str = "fake:echo") -> dsrs.Cost | None:
    return hooks().cost(model, dsrs.LmUsage.from_tokens(1, 1))


class FlatPrice:
    def __init__(self, msats: int, only: str | None = None) -> None:
        self.msats, self.only = msats, only

    @hookimpl
    def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
        return dsrs.Cost(msats=self.msats) if self.only in (None, model) else None


def test_builtin_price_then_a_later_plugin_wins_then_removal_restores() -> None:
    builtin = _cost()
    assert builtin is not None and builtin.msats == 1 + 2
    assert _cost("nobody:prices-this") is None
    register_plugin(FlatPrice(500), name="flat")  # registered later: asked first, as in pluggy
    assert _cost() == dsrs.Cost(msats=500)
    assert dsrs.LM("fake:echo").call("x").usage.cost_msats == 500
    unregister_plugin("flat")
    assert _cost() == builtin


def test_first_non_none_wins_and_none_falls_through() -> None:
    register_plugin(FlatPrice(7, only="fake:a"), name="a-only")
    register_plugin(FlatPrice(9, only="fake:b"), name="b-only")
    assert _cost("fake:a") == dsrs.Cost(msats=7)
    assert _cost("fake:b") == dsrs.Cost(msats=9)
    assert _cost("fake:c") is not None and _cost("fake:c") == _cost("fake:echo")  # builtin prices fake:*


def test_implementation_taking_only_some_arguments() -> None:
    seen: list[str] = []

    class ModelOnly:
        @hookimpl
        def dsrs_cost(self, model: str) -> dsrs.Cost | None:
            seen.append(model)
            return None

    register_plugin(ModelOnly(), name="model-only")
    _cost("fake:echo")
    assert seen == ["fake:echo"]


def test_wrapper_implementation_goes_through_pluggy() -> None:
    class Doubling:
        @hookimpl(wrapper=True)
        def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> Generator[None, Any, Any]:
            result = yield
            return dsrs.Cost(msats=result.msats * 2) if result is not None else None

    register_plugin(Doubling(), name="doubling")
    assert _cost() == dsrs.Cost(msats=6)


def test_tracing_monitors_see_every_call() -> None:
    calls: list[str] = []
    undo = _manager.get_host().pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append(name), lambda outcome, name, impls, kwargs: None
    )
    try:
        _cost()
        _cost()
    finally:
        undo()
    assert calls.count("dsrs_cost") == 2
    _cost()
    assert calls.count("dsrs_cost") == 2


def test_failing_pricer_warns_and_cost_stays_unknown() -> None:
    class Broken:
        @hookimpl(tryfirst=True)
        def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
            raise RuntimeError("price list unreachable")

    register_plugin(Broken(), name="broken-pricer")
    with pytest.warns(DsrsPluginWarning, match="dsrs_cost"):
        assert _cost() is None


class Declared:
    """A pricer declared for one provider with ``prices``; it records every model it is asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    @prices("acme", "acme-eu")
    def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
        self.asked.append(model)
        return dsrs.Cost(msats=42) if model.startswith(("acme:", "acme-eu:")) else None


def test_declared_pricer_is_asked_only_about_its_providers() -> None:
    declared = Declared()
    register_plugin(declared, name="declared")
    register_plugin(FlatPrice(5, only="other:m"), name="undeclared")  # no declaration: asked always
    assert _cost("acme:m") == dsrs.Cost(msats=42)
    assert _cost("acme-eu:m") == dsrs.Cost(msats=42)
    assert _cost("other:m") == dsrs.Cost(msats=5)
    builtin = _cost("fake:echo")
    assert builtin is not None and builtin.msats == 3  # the builtin fake pricer still answers
    assert declared.asked == ["acme:m", "acme-eu:m"]
    # Removing and re-adding plugins rebuilds the per-provider plans.
    unregister_plugin("declared")
    assert _cost("acme:m") is None
    register_plugin(declared, name="declared")
    assert _cost("acme:m") == dsrs.Cost(msats=42)
    assert declared.asked == ["acme:m", "acme-eu:m", "acme:m"]


def test_declared_pricer_is_seen_by_tracing_monitors() -> None:
    register_plugin(Declared(), name="declared")
    calls: list[str] = []
    undo = _manager.get_host().pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append(name), lambda outcome, name, impls, kwargs: None
    )
    try:
        assert _cost("acme:m") == dsrs.Cost(msats=42)
    finally:
        undo()
    assert calls == ["dsrs_cost"]


def test_prices_needs_provider_names() -> None:
    with pytest.raises(TypeError, match="provider names"):
        prices()
    with pytest.raises(TypeError, match="provider names"):
        prices("")
