"""OpenAI model-family rules: which models reason, which need the Responses API, and the wire
profile (:class:`~dsrs.wire.WireOptions`) each family gets.

Reasoning models (o1, o3, o4-mini, gpt-5, codex) take ``max_completion_tokens`` instead of
``max_tokens``, reject ``temperature``, and read system instructions as ``developer`` messages;
o1-mini and o1-preview reject system and developer messages altogether (sent as ``user``).
"""

from __future__ import annotations

import dataclasses
import re

from dsrs.wire import WireOptions

__all__ = ["accepts_system_role", "chat_profile", "is_reasoning_model", "uses_responses_api"]

_O_SERIES = re.compile(r"^o\d+(?:$|-)")
_GPT5 = re.compile(r"^gpt-5(?:$|[.-])")


def _base(model: str) -> str:
    # "openai/gpt-5" (OpenRouter-style ids) and "ft:gpt-4o:org::id" (fine-tunes) name the family too.
    m = model.lower().rsplit("/", 1)[-1]
    if m.startswith("ft:"):
        m = m[3:]
    return m


def is_reasoning_model(model: str) -> bool:
    """o-series, gpt-5 (except the ``-chat`` variants) and codex models."""
    m = _base(model)
    if _O_SERIES.match(m):
        return True
    if _GPT5.match(m):
        return "-chat" not in m
    return "codex" in m


def uses_responses_api(model: str) -> bool:
    """Codex models are served by the Responses API only (``/v1/responses``)."""
    return "codex" in _base(model)


def accepts_system_role(model: str) -> bool:
    """``o1-mini`` and ``o1-preview`` reject both ``system`` and ``developer`` messages."""
    m = _base(model)
    return not (m.startswith("o1-mini") or m.startswith("o1-preview"))


def chat_profile(model: str, base: WireOptions) -> WireOptions:
    """The Chat Completions profile of ``model``'s family, on top of the provider's ``base``."""
    if not is_reasoning_model(model):
        return base
    profile = dataclasses.replace(base, max_tokens_field="max_completion_tokens", send_temperature=False)
    if not accepts_system_role(model):
        profile = dataclasses.replace(profile, system_role="user")
    return profile
