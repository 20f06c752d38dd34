"""dsrs: language-model providers for DSPy-style programs, as plugins.

>>> import dsrs
>>> dsrs.LM("fake:echo").call("Capital of France?").text
'Capital of France?'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dsrs._provider import TIERS, ProbeResult, Provider, ProviderConfig, ProviderSpec, Tier
from dsrs._registry import provider_spec, providers
from dsrs._usage import Cost, LmUsage, UsageRecord, msats_per_usd, set_msats_per_usd
from dsrs.errors import (
    AllLanesFailedError,
    AuthenticationError,
    BudgetExceededError,
    ContentFilterError,
    ContextWindowExceededError,
    InvalidRequestError,
    InvalidTypeError,
    InvalidValueError,
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
    UnknownParameterError,
)
from dsrs.types import (
    Audio,
    File,
    Image,
    LMRequest,
    LMResponse,
    Message,
    ResponseFormat,
    StreamChunk,
    Text,
    Tool,
    ToolCall,
    UnsupportedPartError,
)

__version__ = "0.1.0"

# Names served lazily, so ``import dsrs`` stays cheap: name -> module. ``LM`` is a pydantic
# model; building pydantic's machinery costs ~100 ms, which ``dsrs providers`` never needs.
_LAZY: dict[str, str] = {
    "LM": "dsrs._lm",
    "LMStream": "dsrs._lm",
    # signatures, predictors, adapters, settings
    "Signature": "dsrs._signatures",
    "InputField": "dsrs._signatures",
    "OutputField": "dsrs._signatures",
    "SignatureError": "dsrs._signatures",
    "make_signature": "dsrs._signatures",
    "Predict": "dsrs._predict",
    "Prediction": "dsrs._predict",
    "Adapter": "dsrs._adapters",
    "AdapterParseError": "dsrs._adapters",
    "ChatAdapter": "dsrs._adapters",
    "JSONAdapter": "dsrs._adapters",
    "configure": "dsrs._settings",
    "configure_with_adapter": "dsrs._settings",
    "context": "dsrs._settings",
    "NotConfiguredError": "dsrs._settings",
    # lanes, budgets
    "LaneMux": "dsrs._lanemux",
    "RetryPolicy": "dsrs._lanemux",
    "FailoverPolicy": "dsrs._lanemux",
    "CooldownPolicy": "dsrs._lanemux",
    "UnknownLaneError": "dsrs._lanemux",
    "BatchError": "dsrs._batch",
    # OpenTelemetry spans (the dsrs-core[otel] extra; opentelemetry is imported on use)
    "instrument": "dsrs._otel",
    "uninstrument": "dsrs._otel",
    # shared state across processes (the dsrs-core[redis] extra; redis is imported on use)
    "RedisState": "dsrs._redis_state",
}

if TYPE_CHECKING:
    from dsrs._adapters import Adapter, AdapterParseError, ChatAdapter, JSONAdapter
    from dsrs._batch import BatchError
    from dsrs._lanemux import CooldownPolicy, FailoverPolicy, LaneMux, RetryPolicy, UnknownLaneError
    from dsrs._lm import LM, LMStream
    from dsrs._otel import instrument, uninstrument
    from dsrs._predict import Predict, Prediction
    from dsrs._redis_state import RedisState
    from dsrs._settings import NotConfiguredError, configure, configure_with_adapter, context
    from dsrs._signatures import InputField, OutputField, Signature, SignatureError, make_signature

__all__ = [
    "__version__",
    # providers and the registry
    "TIERS",
    "ProbeResult",
    "Provider",
    "ProviderConfig",
    "ProviderSpec",
    "Tier",
    "provider_spec",
    "providers",
    # data
    "Audio",
    "File",
    "Image",
    "Text",
    "Cost",
    "LMRequest",
    "LMResponse",
    "LmUsage",
    "Message",
    "ResponseFormat",
    "StreamChunk",
    "Tool",
    "ToolCall",
    "UsageRecord",
    "msats_per_usd",
    "set_msats_per_usd",
    # errors
    "AllLanesFailedError",
    "AuthenticationError",
    "BudgetExceededError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "InvalidTypeError",
    "InvalidValueError",
    "UnknownParameterError",
    "LMError",
    "LMTimeoutError",
    "PaymentError",
    "PermissionDeniedError",
    "ProviderLoadError",
    "ProviderUnavailableError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseParseError",
    "UnknownModelError",
    "UnsupportedPartError",
    # served lazily (see _LAZY; a test checks the two lists agree)
    "LM",
    "LMStream",
    "Signature",
    "InputField",
    "OutputField",
    "SignatureError",
    "make_signature",
    "Predict",
    "Prediction",
    "Adapter",
    "AdapterParseError",
    "ChatAdapter",
    "JSONAdapter",
    "configure",
    "configure_with_adapter",
    "context",
    "NotConfiguredError",
    "LaneMux",
    "RetryPolicy",
    "FailoverPolicy",
    "CooldownPolicy",
    "UnknownLaneError",
    "RedisState",
    "BatchError",
    "instrument",
    "uninstrument",
]


#: Lazy names that need an optional extra: name -> what to install.
_EXTRAS: dict[str, str] = {"RedisState": "dsrs-core[redis]"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dsrs' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError:
        if name not in _EXTRAS:
            raise
        # ``from dsrs import *`` works on a core-only install; using the name says what to install.
        value = _needs_extra(name, _EXTRAS[name])
    globals()[name] = value
    return value


class _MissingExtra(type):
    _hint: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(cls._hint)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(cls._hint)


def _needs_extra(name: str, install: str) -> type:
    hint = f"dsrs.{name} needs an optional dependency: pip install '{install}'"
    return _MissingExtra(name, (), {"_hint": hint, "__module__": "dsrs", "__doc__": hint})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
