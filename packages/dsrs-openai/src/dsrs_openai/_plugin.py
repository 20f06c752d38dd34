"""Entry point of dsrs-openai: registers OpenAI, the OpenAI-compatible vendors and Codex (lazily)."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="openai",
            factory="dsrs_openai.provider:OpenAIProvider",
            patterns=("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "codex-*"),
            tier="premium",
            env_vars=("OPENAI_API_KEY",),
            default_model="gpt-4o-mini",
            description="OpenAI Chat Completions (Responses API for codex models)",
            priority=30,
        )
    )
