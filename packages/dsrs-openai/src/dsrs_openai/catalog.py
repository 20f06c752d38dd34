"""Static facts about the providers this package registers: names, URLs, env vars, tiers.

Imported by the entry point (``_plugin``), so it holds plain data only — no HTTP, no codecs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VENDORS", "VendorInfo", "vendor"]


@dataclass(frozen=True, slots=True)
class VendorInfo:
    """One OpenAI-wire vendor: where it lives and which environment variables configure it."""

    name: str
    base_url: str
    api_key_env: tuple[str, ...]
    base_url_env: tuple[str, ...]
    default_model: str
    tier: str = "balanced"
    priority: int = 0
    description: str = ""
    patterns: tuple[str, ...] = ()


def _v(name: str, base_url: str, default_model: str, tier: str, priority: int, description: str) -> VendorInfo:
    env = name.upper()
    return VendorInfo(
        name=name,
        base_url=base_url,
        api_key_env=(f"{env}_API_KEY",),
        base_url_env=(f"{env}_BASE_URL",),
        default_model=default_model,
        tier=tier,
        priority=priority,
        description=description,
    )


#: The OpenAI-compatible vendors, each its own provider (``groq/llama-3.1-8b-instant``).
VENDORS: tuple[VendorInfo, ...] = (
    _v(
        "groq",
        "https://api.groq.com/openai/v1",
        "llama-3.1-8b-instant",
        "balanced",
        20,
        "Groq LPU inference (OpenAI wire)",
    ),
    _v("cerebras", "https://api.cerebras.ai/v1", "llama3.1-8b", "balanced", 19, "Cerebras inference (OpenAI wire)"),
    _v("openrouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini", "balanced", 10, "OpenRouter model router"),
    _v(
        "together",
        "https://api.together.xyz/v1",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "balanced",
        8,
        "Together AI",
    ),
    _v("deepseek", "https://api.deepseek.com/v1", "deepseek-chat", "balanced", 8, "DeepSeek API"),
    _v("xai", "https://api.x.ai/v1", "grok-3-mini", "premium", 5, "xAI Grok API"),
    _v("mistral", "https://api.mistral.ai/v1", "mistral-small-latest", "balanced", 8, "Mistral AI La Plateforme"),
)

OPENAI_BASE_URL = "https://api.openai.com/v1"
#: Bare model names that mean OpenAI (``LM("gpt-4-turbo")``, ``LM("codex-3-opus")``). ``gpt-`` must be
#: followed by a digit so that ``gpt-oss-20b`` (open weights, served locally by dsrs-gptoss) is not claimed.
OPENAI_PATTERNS: tuple[str, ...] = ("gpt-[0-9]*", "o1*", "o3*", "o4*", "chatgpt-*", "codex-*")


def vendor(name: str) -> VendorInfo:
    for v in VENDORS:
        if v.name == name:
            return v
    raise KeyError(name)
