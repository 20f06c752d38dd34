"""The plugin surface: the ``hookimpl`` marker, the loader and the typed hook facade.

Write a plugin::

    from dsrs.plugins import hookimpl
    from dsrs import ProviderSpec

    @hookimpl
    def dsrs_register_providers(register):
        register(ProviderSpec(name="acme", factory="acme_dsrs.provider:AcmeProvider"))

and expose the module under ``[project.entry-points.dsrs]``. Environment switches:

* ``DSRS_DISABLE_PLUGINS=a,b`` — skip plugins by entry-point or distribution name;
* ``DSRS_STRICT_PLUGINS=1`` — a plugin that fails to load raises instead of warning;
* ``DSRS_DISABLE_PLUGIN_AUTOLOAD=1`` — load only dsrs-core's own entry points (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pluggy

from dsrs.plugins._manager import (
    DsrsPluginWarning,
    Hooks,
    PluginHost,
    PluginInfo,
    PluginLoadError,
    get_host,
    reset_host,
)
from dsrs.plugins._types import PaymentContext, PaymentProof, ProviderFailure
from dsrs.plugins.hookspecs import HOOK_NAMES

__all__ = [
    "HOOK_NAMES",
    "DsrsPluginWarning",
    "Hooks",
    "PaymentContext",
    "PaymentProof",
    "PluginHost",
    "PluginInfo",
    "PluginLoadError",
    "ProviderFailure",
    "check_pending",
    "get_host",
    "hookimpl",
    "hooks",
    "prices",
    "register_plugin",
    "reset_host",
    "unregister_plugin",
]

#: Marker for hook implementations: ``@hookimpl def dsrs_cost(model, usage): ...``
hookimpl = pluggy.HookimplMarker("dsrs")


F = TypeVar("F", bound=Callable[..., Any])


def prices(*providers: str) -> Callable[[F], F]:
    """Declare the providers a ``dsrs_cost`` implementation prices, so dsrs asks it only about
    their calls::

        @hookimpl
        @prices("acme")
        def dsrs_cost(model, usage): ...

    An optimisation, not a filter the hook may rely on: it still returns ``None`` for models it
    does not know. An implementation without it is asked about every call.
    """
    if not providers or not all(isinstance(p, str) and p for p in providers):
        raise TypeError("prices() takes one or more provider names, e.g. prices('acme')")
    names = frozenset(providers)

    def mark(function: F) -> F:
        function.dsrs_providers = names  # type: ignore[attr-defined]
        return function

    return mark


def hooks() -> Hooks:
    """The typed facade over the loaded plugins' hooks."""
    return get_host().hooks


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object in code (tests, applications); rebuilds the provider registry."""
    registered = get_host().register(plugin, name=name)
    from dsrs import _registry as registry

    registry.invalidate()
    return registered


def unregister_plugin(name: str) -> None:
    get_host().pm.unregister(name=name)
    from dsrs import _registry as registry

    registry.invalidate()


def check_pending() -> None:
    """Raise if any loaded plugin implements a hook that dsrs does not define (a typo)."""
    get_host().pm.check_pending()
