"""The provider registry: every registered :class:`ProviderSpec`, and model-string resolution.

Built once per process from the ``dsrs_register_providers`` hook (rebuilt only when plugins are
added or removed in code). Model strings resolve as:

1. ``provider:model`` — canonical (``gptoss:gpt-oss-20b``, ``pylon:local:llama2``);
2. ``provider/model`` — when ``provider`` is registered (``ollama/llama2``, ``groq/mixtral-8x7b``);
3. a bare name matched by a provider's ``patterns`` (``gpt-4-turbo`` → openai);
4. with a ``base_url`` and nothing else matching, the built-in OpenAI-compatible provider.

Anything else raises :class:`UnknownModelError` naming what is installed and what to install.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

from dsrs import _runtime
from dsrs._provider import TIERS, ProviderSpec
from dsrs.errors import UnknownModelError

__all__ = [
    "KNOWN_DISTRIBUTIONS",
    "Registry",
    "ResolvedModel",
    "get_registry",
    "invalidate",
    "provider_spec",
    "providers",
]

#: Providers we know of but that live in other distributions, for install hints.
KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "openai": "dsrs-openai",
    "openai-responses": "dsrs-openai",
    "codex": "dsrs-openai",
    "groq": "dsrs-openai",
    "cerebras": "dsrs-openai",
    "openrouter": "dsrs-openai",
    "together": "dsrs-openai",
    "deepseek": "dsrs-openai",
    "xai": "dsrs-openai",
    "mistral": "dsrs-openai",
    "google": "dsrs-google",
    "gemini": "dsrs-google",
    "gptoss": "dsrs-gptoss",
    "gpt-oss": "dsrs-gptoss",
    "llamacpp": "dsrs-gptoss",
    "pylon": "dsrs-pylon",
    "ollama": "dsrs-ollama",
    "anthropic": "dsrs-anthropic",
}
_KNOWN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("gpt-oss*", "dsrs-gptoss"),
    ("gpt-*", "dsrs-openai"),
    ("o1*", "dsrs-openai"),
    ("o3*", "dsrs-openai"),
    ("o4*", "dsrs-openai"),
    ("chatgpt-*", "dsrs-openai"),
    ("codex-*", "dsrs-openai"),
    ("gemini-*", "dsrs-google"),
    ("claude-*", "dsrs-anthropic"),
)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    spec: ProviderSpec
    model: str

    @property
    def canonical(self) -> str:
        return f"{self.spec.name}:{self.model}"


class Registry:
    """Registered providers by name, with prefix and pattern lookup."""

    def __init__(self, specs: list[ProviderSpec], broken: list[tuple[str, str]] | None = None) -> None:
        self.specs: dict[str, ProviderSpec] = {}
        self.broken: list[tuple[str, str]] = list(broken or [])
        self._prefix: dict[str, ProviderSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                warnings.warn(
                    f"dsrs: provider {spec.name!r} registered twice "
                    f"({self.specs[spec.name].distribution} and {spec.distribution}); keeping the first",
                    stacklevel=2,
                )
                continue
            self.specs[spec.name] = spec
        for spec in self.specs.values():
            for p in spec.all_prefixes():
                self._prefix.setdefault(p.lower(), spec)
        self._by_priority = sorted(self.specs.values(), key=lambda s: (-s.priority, s.name))

    def __contains__(self, name: str) -> bool:
        return name in self.specs

    def get(self, name: str) -> ProviderSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise self._unknown(name, f"no provider named {name!r}") from None

    def ordered(self) -> list[ProviderSpec]:
        """Specs in lane order: tier (premium → swarm), then priority, then name."""
        return sorted(self.specs.values(), key=lambda s: (TIERS.index(s.tier), -s.priority, s.name))

    def resolve(self, model: str, *, base_url: str | None = None) -> ResolvedModel:
        if not isinstance(model, str) or not model.strip():
            raise UnknownModelError(f"model must be a non-empty string, got {model!r}", model=str(model))
        model = model.strip()
        head, sep, rest = model.partition(":")
        if sep and head.lower() in self._prefix:
            return ResolvedModel(self._prefix[head.lower()], rest)
        head, sep, rest = model.partition("/")
        if sep and head.lower() in self._prefix:
            return ResolvedModel(self._prefix[head.lower()], rest)
        for spec in self._by_priority:
            if any(fnmatch.fnmatchcase(model.lower(), pat.lower()) for pat in spec.patterns):
                return ResolvedModel(spec, model)
        if base_url is not None and "openai-compatible" in self.specs:
            return ResolvedModel(self.specs["openai-compatible"], model)
        raise self._unknown(model, f"no installed provider serves model {model!r}")

    def _unknown(self, model: str, message: str) -> UnknownModelError:
        installed = sorted(self.specs)
        head = model.replace("/", ":").partition(":")[0].lower()
        hint = None
        sep = ":" in model or "/" in model
        if sep and head in KNOWN_DISTRIBUTIONS:
            hint = KNOWN_DISTRIBUTIONS[head]
        else:
            for pat, dist in _KNOWN_PATTERNS:
                if fnmatch.fnmatchcase(model.lower(), pat):
                    hint = dist
                    break
        candidates = list(self._prefix) + list(KNOWN_DISTRIBUTIONS)
        close = difflib.get_close_matches(head, candidates, n=1, cutoff=0.6)
        suggestion = close[0] if close and close[0] != head and not hint else None
        parts = [message + "."]
        if hint:
            parts.append(f"Install it with: pip install {hint}.")
        if suggestion:
            parts.append(f"Did you mean {suggestion!r}?")
        parts.append(f"Installed providers: {', '.join(installed) or '(none)'}.")
        if not hint:
            parts.append("Use 'provider:model', or pass base_url= for any OpenAI-compatible server.")
        if self.broken:
            parts.append("Plugins that failed to load: " + ", ".join(f"{n} ({e})" for n, e in self.broken) + ".")
        return UnknownModelError(
            " ".join(parts), model=model, installed=installed, suggestion=suggestion, install_hint=hint
        )


def _build() -> Registry:
    from dsrs.plugins import DsrsPluginWarning, get_host

    host = get_host()
    specs: list[ProviderSpec] = []

    def make_register(plugin_name: str) -> Callable[[ProviderSpec], None]:
        dist, version = host.distribution_of(plugin_name)

        def register(spec: ProviderSpec) -> None:
            if not isinstance(spec, ProviderSpec):
                raise TypeError(f"register() takes a dsrs.ProviderSpec, got {type(spec).__name__}")
            specs.append(replace(spec, distribution=spec.distribution or dist, version=spec.version or version))

        return register

    broken: list[tuple[str, str]] = [(p.name, p.error or "") for p in host.plugins if p.broken]
    for plugin_name, exc in host.hooks.register_providers(make_register):
        dist, _ = host.distribution_of(plugin_name)
        broken.append((plugin_name, f"{type(exc).__name__}: {exc}"))
        warnings.warn(
            f"dsrs: plugin {plugin_name!r} ({dist}) failed to register its providers: {exc!r}",
            DsrsPluginWarning,
            stacklevel=3,
        )
    return Registry(specs, broken)


def get_registry() -> Registry:
    """The process's registry (on the runtime), built on first use."""
    reg: Registry = _runtime.runtime().ensure("registry", _build)
    return reg


def invalidate() -> None:
    """Forget the registry; the next lookup rebuilds it from the plugins."""
    rt = _runtime.runtime()
    with rt.lock:
        rt.registry = None


def providers() -> list[ProviderSpec]:
    """Every registered provider, in lane order (the list ``dsrs providers`` prints)."""
    return get_registry().ordered()


def provider_spec(name: str) -> ProviderSpec:
    """The registered spec named ``name``; :class:`UnknownModelError` (with an install hint) if none."""
    return get_registry().get(name)
