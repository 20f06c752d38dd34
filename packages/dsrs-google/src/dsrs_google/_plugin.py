"""Entry point of dsrs-google: the ``google`` (Gemini) provider and its prices.

Errors need no hook: the provider's codec (``GeminiCodec.classify``) classifies them.
"""

from __future__ import annotations

from collections.abc import Callable

from dsrs import Cost, LmUsage, ProviderSpec
from dsrs.plugins import hookimpl, prices


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="google",
            factory="dsrs_google.provider:GeminiProvider",
            prefixes=("gemini",),
            patterns=("gemini-*",),
            tier="balanced",
            env_vars=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
            default_model="gemini-2.5-flash",
            description="Google Gemini API (generateContent)",
            priority=20,
        )
    )


@hookimpl
@prices("google")
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    """Price Gemini calls from the table in ``pricing.json`` (unknown models: ``None``)."""
    if not model.startswith("google:"):
        return None
    from dsrs_google.pricing import cost_of

    return cost_of(model.partition(":")[2], usage)
