"""The entry-point target: cheap to import, registers the provider by its "module:Class" path."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import Cost, LmUsage, ProviderSpec
from dsrs.plugins import hookimpl

#: USD per million input / output tokens, per model: data, not code, so a price change is one line.
PRICES: dict[str, tuple[float, float]] = {
    "acme-large": (2.50, 10.00),
    "acme-small": (0.15, 0.60),
}


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="acme",  # "acme:acme-large"
            factory="dsrs_acme_example.provider:AcmeProvider",  # imported on first use only
            patterns=("acme-*",),  # bare names it serves: LM("acme-large")
            env_vars=("ACME_API_KEY", "ACME_BASE_URL"),
            tier="balanced",
            default_model="acme-large",
            description="Acme chat models (example plugin)",
        )
    )


@hookimpl
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    """The price of a call to an Acme model; ``None`` (unknown) for any other model."""
    provider, _, name = model.partition(":")
    price = PRICES.get(name) if provider == "acme" else None
    if price is None:
        return None
    return Cost(usd=(usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6)
