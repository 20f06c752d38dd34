"""Entry point of dsrs-gptoss: registers the ``gptoss`` provider (llama-server), imported lazily."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="gptoss",
            factory="dsrs_gptoss.provider:GptOssProvider",
            prefixes=("gpt-oss", "llamacpp"),
            tier="local",
            env_vars=("GPTOSS_BASE_URL", "LLAMA_MODEL_PATH"),
            default_model="gpt-oss-20b",
            description="local llama.cpp llama-server (gpt-oss, any GGUF), auto-started",
            priority=5,
        )
    )
