"""What a provider is: :class:`ProviderSpec` (registered, cheap) and :class:`Provider` (loaded lazily).

A plugin registers a :class:`ProviderSpec` from its ``dsrs_register_providers`` hook. The spec names
the implementation as a ``"module:Class"`` string, so discovery imports nothing heavy; the class is
imported the first time an :class:`~dsrs.LM` uses it or :meth:`LaneMux.auto_detect` probes it.
"""

from __future__ import annotations

import abc
import importlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from dsrs.types import LMRequest, LMResponse, StreamChunk

__all__ = [
    "TIERS",
    "ProbeResult",
    "Provider",
    "ProviderConfig",
    "ProviderSpec",
    "Tier",
]

Tier = Literal["premium", "balanced", "local", "swarm"]
#: Lane tiers, best first. ``LaneMux.auto_detect`` orders lanes this way.
TIERS: tuple[Tier, ...] = ("premium", "balanced", "local", "swarm")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Per-LM settings handed to a provider's constructor. ``api_key`` is never logged."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,) if self.api_key else ()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What :meth:`Provider.probe` found. ``reachable`` is ``None`` when not checked.

    ``model`` is the model a lane should use (e.g. the one a local server has loaded); ``None``
    means the spec's ``default_model``. ``lane=False`` reports a usable provider that
    ``auto_detect`` should still not turn into a lane of its own (an alias of another provider).
    """

    configured: bool
    reachable: bool | None = None
    latency_ms: float | None = None
    detail: str = ""
    model: str | None = None
    lane: bool = True


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider as registered by a plugin.

    Attributes:
        name: canonical prefix, as in ``"name:model"``.
        factory: the :class:`Provider` subclass, or ``"module:Class"`` to import it lazily.
        prefixes: more model-string prefixes that mean this provider (``"gpt-oss"``).
        patterns: ``fnmatch`` globs of bare model names this provider serves (``"gpt-4*"``).
        env_vars: environment variables it reads (``*_API_KEY`` first).
        tier: default lane tier for ``auto_detect``.
        default_model: model used when a lane is built for this provider with no model given.
        priority: order within a tier (higher first) and between overlapping patterns.
        distribution: the installed distribution that registered it (filled by the loader).
    """

    name: str
    factory: str | type[Provider]
    prefixes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    env_vars: tuple[str, ...] = ()
    tier: Tier = "balanced"
    default_model: str | None = None
    description: str = ""
    priority: int = 0
    distribution: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name or "/" in self.name:
            raise ValueError(f"provider name must be a non-empty word without ':' or '/', got {self.name!r}")
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {self.tier!r}")

    def all_prefixes(self) -> tuple[str, ...]:
        return (self.name, *self.prefixes)

    def load(self) -> type[Provider]:
        """Import and return the provider class."""
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, attr) if attr else module
        except Exception as exc:
            from dsrs.errors import ProviderLoadError

            dist = f" from {self.distribution} {self.version or ''}".rstrip() if self.distribution else ""
            fix = f" Reinstall it: pip install --force-reinstall {self.distribution}." if self.distribution else ""
            raise ProviderLoadError(
                f"provider {self.name!r}{dist} failed to import {self.factory}: {type(exc).__name__}: {exc}.{fix}",
                model=None,
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise TypeError(f"{self.factory!r} is not a dsrs.Provider subclass")
        return cls


class Provider(abc.ABC):
    """Base class of provider implementations.

    Subclasses implement :meth:`acomplete` (and usually :meth:`astream` and :meth:`probe`). They get
    the final :class:`LMRequest`; they return an :class:`LMResponse` whose usage has token counts
    (cost is filled in by dsrs through the ``dsrs_cost`` hook unless the provider set it) or raise a
    :class:`dsrs.errors.LMError` subclass.
    """

    #: Capability flags, read by LaneMux, adapters and the conformance kit.
    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        self.spec = spec
        self.config = config

    @property
    def name(self) -> str:
        return self.spec.name

    @abc.abstractmethod
    async def acomplete(self, request: LMRequest) -> LMResponse:
        """Answer one request."""

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        """Stream deltas; the last chunk carries the full response. Default: one chunk."""
        response = await self.acomplete(request)
        yield StreamChunk(text=response.text, reasoning=response.reasoning or "", response=response)

    async def aclose(self) -> None:  # noqa: B027 - optional for providers
        """Release resources this instance holds (subprocesses, sockets)."""

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Is this provider configured (keys present) and reachable? Default: env vars only."""
        present = [v for v in spec.env_vars if os.environ.get(v)]
        if spec.env_vars and not present:
            return ProbeResult(False, None, None, f"set {' or '.join(spec.env_vars)}")
        return ProbeResult(True, None, None, "configured")


async def timed_probe(check: Callable[[], Any]) -> tuple[Any, float]:
    """Run an async ``check`` and return its result with the latency in ms."""
    t0 = time.perf_counter()
    result = await check()
    return result, (time.perf_counter() - t0) * 1000
