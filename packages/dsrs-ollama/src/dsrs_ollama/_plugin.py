"""Entry point of dsrs-ollama: registers the ``ollama`` provider (implementation imported lazily)."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="ollama",
            factory="dsrs_ollama.provider:OllamaProvider",
            tier="local",
            env_vars=("OLLAMA_HOST",),
            default_model="llama2",
            description="Ollama native API (/api/chat)",
            priority=10,
        )
    )
