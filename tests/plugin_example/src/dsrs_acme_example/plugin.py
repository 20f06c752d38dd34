"""The entry-point target: cheap to import, registers the provider by its "module:Class" path."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import Cost, LmUsage, ProviderSpec
from dsrs.plugins import hookimpl


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="acme",
            factory="dsrs_acme_example.provider:AcmeProvider",
            patterns=("acme-*",),
            tier="balanced",
            env_vars=("ACME_API_KEY",),
            default_model="reverse",
            description="example plugin: answers with the prompt reversed",
        )
    )


@hookimpl
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    if not model.startswith("acme:"):
        return None
    return Cost(usd=usage.total_tokens * 0.000_001)  # $1 per million tokens
