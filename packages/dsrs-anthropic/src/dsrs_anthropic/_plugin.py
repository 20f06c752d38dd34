"""Entry point of dsrs-anthropic: the ``anthropic`` (Claude) provider, its prices and its error classifier."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import Cost, LmUsage, ProviderSpec
from dsrs.errors import LMError
from dsrs.plugins import ProviderFailure, hookimpl, prices


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="anthropic",
            factory="dsrs_anthropic.provider:AnthropicProvider",
            patterns=("claude-*",),
            tier="premium",
            env_vars=("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
            default_model="claude-sonnet-4-5",
            description="Anthropic Messages API (Claude)",
            priority=20,
        )
    )


@hookimpl
@prices("anthropic")
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    """Price Claude calls from the table in ``pricing.json`` (unknown models: ``None``)."""
    if not model.startswith("anthropic:"):
        return None
    from dsrs_anthropic.pricing import cost_of

    return cost_of(model.partition(":")[2], usage)


@hookimpl
def dsrs_classify_error(provider: str, error: ProviderFailure) -> LMError | None:
    if error.wire != "anthropic-messages":
        return None
    from dsrs_anthropic import failures

    return failures.classify(error)
