"""dsrs: language-model providers for DSPy-style programs, as plugins.

>>> import dsrs
>>> dsrs.LM("fake:echo").call("Capital of France?").text
'Capital of France?'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dsrs.errors import (
    AllLanesFailedError,
    AuthenticationError,
    BudgetExceededError,
    ContentFilterError,
    ContextWindowExceededError,
    InvalidRequestError,
    LMError,
    LMTimeoutError,
    PaymentError,
    PermissionDeniedError,
    ProviderLoadError,
    ProviderUnavailableError,
    QuotaExceededError,
    RateLimitError,
    ResponseParseError,
    UnknownModelError,
)
from dsrs.provider import TIERS, ProbeResult, Provider, ProviderConfig, ProviderSpec, Tier
from dsrs.registry import providers
from dsrs.types import LMRequest, LMResponse, Message, ResponseFormat, StreamChunk, Tool, ToolCall
from dsrs.usage import Cost, LmUsage, UsageRecord, msats_per_usd, set_msats_per_usd

__version__ = "0.1.0"

# Names served lazily, so ``import dsrs`` stays cheap: name -> module. ``LM`` is a pydantic
# model; building pydantic's machinery costs ~100 ms, which ``dsrs providers`` never needs.
_LAZY: dict[str, str] = {
    "LM": "dsrs.lm",
    "LMStream": "dsrs.lm",
    # signatures, predictors, adapters, settings
    "Signature": "dsrs.signatures",
    "InputField": "dsrs.signatures",
    "OutputField": "dsrs.signatures",
    "SignatureError": "dsrs.signatures",
    "make_signature": "dsrs.signatures",
    "Predict": "dsrs.predict",
    "Prediction": "dsrs.predict",
    "Adapter": "dsrs.adapters",
    "AdapterParseError": "dsrs.adapters",
    "ChatAdapter": "dsrs.adapters",
    "JSONAdapter": "dsrs.adapters",
    "configure": "dsrs.settings",
    "configure_with_adapter": "dsrs.settings",
    "context": "dsrs.settings",
    "NotConfiguredError": "dsrs.settings",
    # lanes, budgets
    "LaneMux": "dsrs.lanemux",
    "RetryPolicy": "dsrs.lanemux",
    "FailoverPolicy": "dsrs.lanemux",
    "CooldownPolicy": "dsrs.lanemux",
    "UnknownLaneError": "dsrs.lanemux",
    # shared state across processes (the dsrs-core[redis] extra; redis is imported on use)
    "RedisState": "dsrs.redis_state",
}

if TYPE_CHECKING:
    from dsrs.adapters import Adapter, AdapterParseError, ChatAdapter, JSONAdapter
    from dsrs.lanemux import CooldownPolicy, FailoverPolicy, LaneMux, RetryPolicy, UnknownLaneError
    from dsrs.lm import LM, LMStream
    from dsrs.predict import Predict, Prediction
    from dsrs.redis_state import RedisState
    from dsrs.settings import NotConfiguredError, configure, configure_with_adapter, context
    from dsrs.signatures import InputField, OutputField, Signature, SignatureError, make_signature

__all__ = [
    "LM",
    "TIERS",
    "AllLanesFailedError",
    "AuthenticationError",
    "BudgetExceededError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "Cost",
    "InvalidRequestError",
    "LMError",
    "LMRequest",
    "LMResponse",
    "LMStream",
    "LMTimeoutError",
    "LmUsage",
    "Message",
    "PaymentError",
    "PermissionDeniedError",
    "ProbeResult",
    "Provider",
    "ProviderConfig",
    "ProviderLoadError",
    "ProviderSpec",
    "ProviderUnavailableError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseFormat",
    "ResponseParseError",
    "StreamChunk",
    "Tier",
    "Tool",
    "ToolCall",
    "UnknownModelError",
    "UsageRecord",
    "__version__",
    "msats_per_usd",
    "providers",
    "set_msats_per_usd",
    "Adapter",
    "AdapterParseError",
    "ChatAdapter",
    "CooldownPolicy",
    "FailoverPolicy",
    "InputField",
    "JSONAdapter",
    "LaneMux",
    "NotConfiguredError",
    "OutputField",
    "Predict",
    "RedisState",
    "Prediction",
    "RetryPolicy",
    "Signature",
    "SignatureError",
    "UnknownLaneError",
    "configure",
    "configure_with_adapter",
    "context",
    "make_signature",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dsrs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
