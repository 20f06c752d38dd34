"""The built-in provider for any OpenAI-compatible server given by ``base_url``.

``LM("my-model", base_url="http://localhost:8000")`` needs no provider package: vLLM, llama.cpp's
``llama-server``, LM Studio and friends all speak the Chat Completions wire. Options are passed
through to the request body; the key comes from ``api_key=`` or ``OPENAI_COMPATIBLE_API_KEY``.
"""

from __future__ import annotations

from typing import ClassVar

from dsrs._provider import ProbeResult, ProviderSpec
from dsrs.wire._http_provider import OpenAICompatibleProvider

__all__ = ["GenericOpenAICompatibleProvider"]


class GenericOpenAICompatibleProvider(OpenAICompatibleProvider):
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_COMPATIBLE_API_KEY",)
    base_url_env: ClassVar[tuple[str, ...]] = ("OPENAI_COMPATIBLE_BASE_URL",)

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        import os

        if not os.environ.get("OPENAI_COMPATIBLE_BASE_URL"):
            return ProbeResult(False, None, None, "set OPENAI_COMPATIBLE_BASE_URL (or pass base_url= to LM)")
        return await super().probe(spec, timeout)
