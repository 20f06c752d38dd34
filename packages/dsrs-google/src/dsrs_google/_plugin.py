"""Entry point of dsrs-google: registers the ``google`` (Gemini) provider, imported lazily."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl


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
            default_model="gemini-2.0-flash",
            description="Google Gemini API",
            priority=20,
        )
    )
