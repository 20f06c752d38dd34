"""The entry point stays cheap, the hooks answer only for this package's providers."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import dsrs
from dsrs import LmUsage
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


def test_errors_are_classified_by_the_codec_not_a_hook() -> None:
    # One OpenAI classifier (dsrs.wire.openai_chat.classify), asked through the provider's codec;
    # the package registers no dsrs_classify_error hook of its own any more.
    assert not hasattr(_plugin, "dsrs_classify_error")
    body = b'{"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}'
    lm = dsrs.LM("groq:llama-3.1-8b-instant", api_key="k", base_url="http://127.0.0.1:9")
    provider: Any = lm.provider()
    err = provider.failure(lm.build_request("hi"), status=429, body=body)
    assert isinstance(err, dsrs.errors.QuotaExceededError) and err.provider == "groq"
