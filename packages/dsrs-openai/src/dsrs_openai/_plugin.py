"""Entry point of dsrs-openai: registers OpenAI, the OpenAI-compatible vendors and Codex.

Cheap to import: provider classes, codecs and the pricing table load on first use.
"""

from __future__ import annotations

from collections.abc import Callable

from dsrs import ProviderSpec
from dsrs.plugins import hookimpl, prices
from dsrs.types import Cost, LmUsage
from dsrs_openai.catalog import OPENAI_PATTERNS, VENDORS

_CLASSES = {
    "groq": "GroqProvider",
    "cerebras": "CerebrasProvider",
    "openrouter": "OpenRouterProvider",
    "together": "TogetherProvider",
    "deepseek": "DeepSeekProvider",
    "xai": "XAIProvider",
    "mistral": "MistralProvider",
}
#: Every provider name this package registers (the cost hook prices only these).
#: Errors need no hook here: the codecs' ``classify`` (``dsrs.wire.openai_chat.classify``) reads them.
PROVIDER_NAMES = frozenset({"openai", "openai-responses", "codex", *_CLASSES})


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="openai",
            factory="dsrs_openai.provider:OpenAIProvider",
            patterns=OPENAI_PATTERNS,
            tier="premium",
            env_vars=("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"),
            default_model="gpt-4o-mini",
            description="OpenAI Chat Completions (Responses API for codex models)",
            priority=30,
        )
    )
    register(
        ProviderSpec(
            name="openai-responses",
            factory="dsrs_openai.provider:OpenAIResponsesProvider",
            tier="premium",
            env_vars=("OPENAI_API_KEY", "OPENAI_BASE_URL"),
            default_model="gpt-4o-mini",
            description="OpenAI Responses API (POST /v1/responses)",
            priority=29,
        )
    )
    for info in VENDORS:
        register(
            ProviderSpec(
                name=info.name,
                factory=f"dsrs_openai.vendors:{_CLASSES[info.name]}",
                tier=info.tier,  # type: ignore[arg-type]
                env_vars=(*info.api_key_env, *info.base_url_env),
                default_model=info.default_model,
                description=info.description,
                priority=info.priority,
            )
        )
    register(
        ProviderSpec(
            name="codex",
            factory="dsrs_openai.codex:CodexProvider",
            tier="premium",
            env_vars=("CODEX_BIN",),
            default_model="default",
            description="headless Codex CLI (codex exec --json), one isolated run per call",
            priority=20,
        )
    )


@hookimpl
@prices(*PROVIDER_NAMES)
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    provider = model.partition(":")[0]
    if provider not in PROVIDER_NAMES:
        return None
    from dsrs_openai.pricing import cost_for

    return cost_for(model, usage)
