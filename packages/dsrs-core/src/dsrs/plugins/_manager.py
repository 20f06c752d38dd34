"""Loading plugins from entry points, defensively, and a typed facade over ``pm.hook``."""

from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from dsrs import _runtime
from dsrs._usage import Cost, LmUsage, UsageRecord
from dsrs.errors import LMError
from dsrs.plugins import hookspecs
from dsrs.plugins._types import PaymentContext, PaymentProof, ProviderFailure

ENTRY_POINT_GROUP = "dsrs"
_COST_ARGS = ("model", "usage")
# How a firstresult hook is called: its functions in calling order, each taking the hook's
# arguments as given, or each with the positions of the arguments it takes.
_Plan = tuple[Any, ...]
CORE_DISTRIBUTION = "dsrs-core"


class PluginLoadError(RuntimeError):
    """A plugin failed to load while ``DSRS_STRICT_PLUGINS=1``."""


class DsrsPluginWarning(UserWarning):
    """A plugin failed to load or a hook implementation raised; the rest go on."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One entry point of the ``dsrs`` group and what became of it."""

    name: str
    distribution: str
    version: str
    value: str
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _disabled() -> set[str]:
    raw = os.environ.get("DSRS_DISABLE_PLUGINS", "")
    return {p.strip().lower() for p in raw.split(",") if p.strip()}


def _ask(plan: _Plan, values: tuple[Any, ...]) -> Any:
    """The first non-``None`` answer of ``plan``'s functions (see :meth:`Hooks._plan`), or ``None``."""
    if plan and plan[0].__class__ is not tuple:  # functions taking the hook's arguments in order
        for function in plan:
            result = function(*values)
            if result is not None:
                return result
        return None
    for function, positions in plan:
        result = function(*[values[i] for i in positions])
        if result is not None:
            return result
    return None


class Hooks:
    """Typed calls of every hook; the rest of dsrs never touches ``pm.hook`` directly."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._hook = pm.hook
        # pluggy's call loop as the manager was created; tracing/monitoring replaces it, and then
        # :meth:`_first_result` defers to pluggy so monitors see every call.
        self._plain_exec = getattr(pm, "_inner_hookexec", None)
        # hook name -> (the implementations the plan was made for, the plan or None = use pluggy)
        self._plans: dict[str, tuple[list[Any], _Plan | None]] = {}
        # provider name -> (the dsrs_cost implementations, the functions asked for its calls or None)
        self._cost_plans: dict[str, tuple[list[Any], tuple[Callable[..., Any], ...] | None]] = {}

    def _plan(self, caller: Any, impls: list[Any], names: tuple[str, ...]) -> _Plan | None:
        cached = self._plans.get(caller.name)
        if cached is not None and cached[0] == impls:  # same implementations, same order
            return cached[1]
        plan: _Plan | None = None
        simple = not any(
            i.hookwrapper or i.wrapper or getattr(i, "kwargnames", ()) or not set(i.argnames) <= set(names)
            for i in impls
        )
        if simple:
            ordered = list(reversed(impls))
            if all(tuple(i.argnames) == names for i in ordered):
                plan = tuple(i.function for i in ordered)  # every one takes the arguments as given
            else:
                plan = tuple((i.function, tuple(names.index(a) for a in i.argnames)) for i in ordered)
        self._plans[caller.name] = (impls, plan)
        return plan

    def _first_result(self, caller: Any, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
        """``caller(**dict(zip(names, values)))`` for a ``firstresult`` hook, cheaply per call.

        Same order and semantics as pluggy's loop (last registered first, tryfirst/trylast
        respected, first non-``None`` wins), from a plan cached until the implementations change;
        any wrapper implementation, keyword-only hook argument or active tracing goes through
        pluggy itself. No implementation: no call at all.
        """
        impls = caller.get_hookimpls()
        if not impls:
            return None
        plan = self._plan(caller, impls, names)
        if plan is None or self._traced():
            return caller(**dict(zip(names, values, strict=True)))
        return _ask(plan, values)

    def _traced(self) -> bool:
        """Whether a monitor replaced pluggy's call loop (tracing): then pluggy runs every call."""
        return getattr(self._pm, "_inner_hookexec", None) is not self._plain_exec

    def register_providers(
        self, make_register: Callable[[str], Callable[[Any], None]]
    ) -> list[tuple[str, BaseException]]:
        """Call each plugin's ``dsrs_register_providers`` on its own, so one failure stays local.

        ``make_register(plugin_name)`` gives the ``register`` callback handed to that plugin.
        Returns the ``(plugin_name, exception)`` of plugins that raised.
        """
        failures: list[tuple[str, BaseException]] = []
        for impl in self._hook.dsrs_register_providers.get_hookimpls():
            register = make_register(impl.plugin_name)
            try:
                impl.function(**{a: register for a in impl.argnames})
            except Exception as exc:  # a broken plugin must not take the others down
                failures.append((impl.plugin_name, exc))
        return failures

    def cost(self, model: str, usage: LmUsage) -> Cost | None:
        try:
            plan = self._cost_plan(model.partition(":")[0])
            if plan is None:
                result: Cost | None = self._first_result(self._hook.dsrs_cost, _COST_ARGS, (model, usage))
            else:
                result = _ask(plan, (model, usage))
        except Exception as exc:
            warnings.warn(f"dsrs: a dsrs_cost hook failed for {model!r}: {exc!r}", DsrsPluginWarning, stacklevel=2)
            return None
        return result

    def _cost_plan(self, provider: str) -> tuple[Callable[..., Any], ...] | None:
        """The ``dsrs_cost`` functions to ask for ``provider``'s calls, in pluggy's order, without
        those declared (:func:`dsrs.plugins.prices`) for other providers only; ``None``: ask
        through :meth:`_first_result` (wrappers, partial signatures, tracing)."""
        caller = self._hook.dsrs_cost
        impls = caller.get_hookimpls()
        cached = self._cost_plans.get(provider)
        if cached is not None and cached[0] == impls:
            plan = cached[1]
        else:
            general = self._plan(caller, impls, _COST_ARGS) if impls else ()
            plan = None
            if general is not None and (not general or general[0].__class__ is not tuple):
                plan = tuple(f for f in general if provider in getattr(f, "dsrs_providers", (provider,)))
            self._cost_plans[provider] = (impls, plan)
        if plan is not None and self._traced():
            return None  # a monitor is tracing hook calls: let it see them
        return plan

    def usage_recorded(self, record: UsageRecord) -> None:
        for impl in self._hook.dsrs_usage_recorded.get_hookimpls():
            try:
                impl.function(**{a: record for a in impl.argnames})
            except Exception as exc:
                warnings.warn(f"dsrs: usage sink {impl.plugin_name!r} failed: {exc!r}", DsrsPluginWarning, stacklevel=2)

    @property
    def has_usage_sinks(self) -> bool:
        return bool(self.usage_sinks())

    def usage_sinks(self) -> list[Any]:
        """The ``dsrs_usage_recorded`` implementations (pluggy ``HookImpl`` s; ``.function``)."""
        return self._hook.dsrs_usage_recorded.get_hookimpls()  # type: ignore[no-any-return]

    def classify_error(self, provider: str, error: ProviderFailure) -> LMError | None:
        result: LMError | None = self._hook.dsrs_classify_error(provider=provider, error=error)
        return result

    def pay_invoice(self, bolt11: str, amount_msats: int, context: PaymentContext) -> PaymentProof | None:
        result: PaymentProof | None = self._hook.dsrs_pay_invoice(
            bolt11=bolt11, amount_msats=amount_msats, context=context
        )
        return result

    @property
    def has_wallet(self) -> bool:
        return bool(self._hook.dsrs_pay_invoice.get_hookimpls())


class PluginHost:
    """The process's plugin manager: entry points loaded once, extra plugins added in code."""

    def __init__(self, *, autoload: bool | None = None) -> None:
        self.pm = pluggy.PluginManager("dsrs")
        self.pm.add_hookspecs(hookspecs)
        self.hooks = Hooks(self.pm)
        self.plugins: list[PluginInfo] = []
        if autoload is None:
            autoload = not _flag("DSRS_DISABLE_PLUGIN_AUTOLOAD")
        self._load_entry_points(external=autoload)
        self.pm.check_pending()

    def _load_entry_points(self, *, external: bool) -> None:
        strict = _flag("DSRS_STRICT_PLUGINS")
        disabled = _disabled()
        seen: set[str] = set()
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist_name = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            norm_dist = dist_name.lower().replace("_", "-")
            if norm_dist != CORE_DISTRIBUTION and not external:
                continue
            if ep.name.lower() in disabled or norm_dist in disabled or ep.name in seen:
                continue
            seen.add(ep.name)
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:
                msg = f"{type(exc).__name__}: {exc}"
                self.plugins.append(PluginInfo(ep.name, dist_name, version, ep.value, msg))
                if strict:
                    raise PluginLoadError(
                        f"dsrs plugin {ep.name!r} from distribution {dist_name} {version} failed to load: {msg}"
                    ) from exc
                warnings.warn(
                    f"dsrs: plugin {ep.name!r} from distribution {dist_name} {version} failed to load "
                    f"and was skipped: {msg} (set DSRS_STRICT_PLUGINS=1 to make this an error, or "
                    f"DSRS_DISABLE_PLUGINS={ep.name} to silence it)",
                    DsrsPluginWarning,
                    stacklevel=2,
                )
                continue
            self.plugins.append(PluginInfo(ep.name, dist_name, version, ep.value))

    def distribution_of(self, plugin_name: str) -> tuple[str, str]:
        for info in self.plugins:
            if info.name == plugin_name:
                return info.distribution, info.version
        return "(in code)", ""

    def register(self, plugin: object, name: str | None = None) -> str:
        registered = self.pm.register(plugin, name=name)
        self.pm.check_pending()
        if registered is None:
            raise ValueError(f"plugin {name or plugin!r} is blocked or already registered")
        return registered


def get_host() -> PluginHost:
    """The process-wide plugin host (on the runtime), created and loaded on first use."""
    host: PluginHost | None = _runtime._current.host  # the hot path: two attribute reads, no call
    return host if host is not None else _runtime.runtime().ensure("host", PluginHost)  # type: ignore[no-any-return]


def reset_host(*, autoload: bool | None = None) -> PluginHost:
    """Rebuild the plugin host (tests). Clears the provider registry too."""
    rt = _runtime.runtime()
    with rt.lock:
        rt.host = host = PluginHost(autoload=autoload)
    from dsrs import _registry as registry

    registry.invalidate()
    return host
