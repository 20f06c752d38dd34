"""Entry point of dsrs-ollama: the ``ollama`` provider and its (zero) price.

Errors need no hook: the provider's codec (``OllamaCodec.classify``) classifies them.
"""

from __future__ import annotations

from collections.abc import Callable

from dsrs import Cost, LmUsage, ProviderSpec
from dsrs.plugins import hookimpl, prices


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="ollama",
            factory="dsrs_ollama.provider:OllamaProvider",
            tier="local",
            env_vars=("OLLAMA_HOST",),
            default_model="llama3.2",
            description="Ollama native API (/api/chat)",
            priority=10,
        )
    )


@hookimpl
@prices("ollama")
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    """Local inference costs nothing (0, a known price, not an unknown one)."""
    if model.startswith("ollama:"):
        return Cost(usd=0.0, msats=0)
    return None
