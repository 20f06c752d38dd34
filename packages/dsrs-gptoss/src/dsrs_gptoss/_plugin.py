"""Entry point of dsrs-gptoss: registers the ``gptoss`` provider (llama-server) and prices it at 0."""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl, prices
from dsrs.types import Cost, LmUsage

PREFIXES = ("gptoss:", "gpt-oss:", "llamacpp:")


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="gptoss",
            factory="dsrs_gptoss.provider:GptOssProvider",
            prefixes=("gpt-oss", "llamacpp"),
            tier="local",
            env_vars=("GPTOSS_BASE_URL", "LLAMA_MODEL_PATH", "LLAMA_SERVER_BIN"),
            default_model="gpt-oss-20b",
            description="local llama.cpp llama-server (gpt-oss, any GGUF), auto-started",
            priority=5,
        )
    )


@hookimpl
@prices("gptoss", "gpt-oss", "llamacpp")
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    """Local inference costs nothing: 0 msats, $0 (known, not unknown)."""
    if model.startswith(PREFIXES):
        return Cost(usd=0.0, msats=0)
    return None
