"""The entry point stays cheap, the hooks answer only for this package's providers."""

from __future__ import annotations

import subprocess
import sys

import dsrs
from dsrs import LmUsage
from dsrs.plugins import ProviderFailure
from dsrs_openai import _plugin


def test_discovery_imports_no_implementation_module() -> None:
    code = (
        "import sys, dsrs; names = {s.name for s in dsrs.providers()}; "
        "assert {'openai', 'openai-responses', 'codex', 'groq', 'cerebras', 'openrouter', 'together', 'deepseek', 'xai', 'mistral'} <= names, names; "
        "heavy = [m for m in sys.modules if m.startswith('dsrs_openai.') and m not in ('dsrs_openai._plugin', 'dsrs_openai.catalog')]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cost_hook_prices_only_its_providers() -> None:
    usage = LmUsage.from_tokens(1_000_000, 0)
    cost = _plugin.dsrs_cost("openai:gpt-4o-mini", usage)
    assert cost is not None and cost.usd == 0.15
    assert _plugin.dsrs_cost("google:gemini-1.5-pro", usage) is None
    assert _plugin.dsrs_cost("openai:unknown-model", usage) is None


def test_classify_hook_claims_only_its_wires() -> None:
    body = b'{"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}'
    mine = ProviderFailure("groq", "m", 429, {}, body, wire="openai-chat")
    assert isinstance(_plugin.dsrs_classify_error("groq", mine), dsrs.errors.QuotaExceededError)
    assert (
        _plugin.dsrs_classify_error("ollama", ProviderFailure("ollama", "m", 429, {}, body, wire="openai-chat")) is None
    )
    assert _plugin.dsrs_classify_error("openai", ProviderFailure("openai", "m", 429, {}, body, wire="ollama")) is None
