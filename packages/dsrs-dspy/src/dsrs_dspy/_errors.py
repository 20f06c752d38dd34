"""dsrs's typed errors as ``dspy.lm15`` errors, which DSPy turns into its own public ones.

An engine raises lm15 errors (DSPy's engine contract); DSPy projects them onto ``dspy.utils.exceptions``
(``LMRateLimitError``, ``LMAuthError``, ...). The dsrs error stays the ``__cause__``, so a caller can
still reach ``BudgetExceededError`` or ``AllLanesFailedError.errors``. Messages are dsrs's, which are
already redacted (no key, no echoed secret).
"""

from __future__ import annotations

from typing import Any

from dspy import lm15

from dsrs import errors

__all__ = ["to_lm15_error"]

# Most specific first: a subclass must be matched before its parent.
_MAPPING: tuple[tuple[type[errors.LMError], Any, str | None], ...] = (
    (errors.ContextWindowExceededError, lm15.ContextLengthError, None),
    (errors.InvalidRequestError, lm15.InvalidRequestError, None),
    (errors.RateLimitError, lm15.RateLimitError, None),
    (errors.QuotaExceededError, lm15.BillingError, "quota_exceeded"),
    (errors.BudgetExceededError, lm15.BillingError, "budget_exceeded"),
    (errors.PaymentError, lm15.BillingError, "payment"),
    (errors.AuthenticationError, lm15.AuthError, None),
    (errors.PermissionDeniedError, lm15.AuthError, "permission_denied"),
    (errors.LMTimeoutError, lm15.TimeoutError, None),
    (errors.ProviderUnavailableError, lm15.ServerError, "unavailable"),
    (errors.ResponseParseError, lm15.ServerError, "response_parse"),
    (errors.ContentFilterError, lm15.ProviderError, "content_filter"),
    (errors.UnknownModelError, lm15.ConfigurationError, "unknown_model"),
    (errors.AllLanesFailedError, lm15.ProviderError, "all_lanes_failed"),
)


def _mapped(exc: errors.LMError) -> tuple[Any, str | None]:
    for source, mapped, mapped_code in _MAPPING:
        if isinstance(exc, source):
            return mapped, mapped_code
    return lm15.ProviderError, "dsrs"


def to_lm15_error(exc: errors.LMError) -> Exception:
    """The lm15 error DSPy expects from an engine for the dsrs error ``exc`` (raise it ``from exc``).

    When every lane of a LaneMux failed the same way (all overloaded, all rate limited), the error
    is of that kind, so DSPy code catching ``LMServerError`` or ``LMRateLimitError`` still works.
    """
    target, code = _mapped(exc)
    if isinstance(exc, errors.AllLanesFailedError):
        kinds = {_mapped(e)[0] for e in exc.errors.values() if isinstance(e, errors.LMError)}
        if len(kinds) == 1 and len(exc.errors) > 0 and all(isinstance(e, errors.LMError) for e in exc.errors.values()):
            target = kinds.pop()
    kwargs: dict[str, Any] = {"provider": exc.provider or "dsrs"}
    if issubclass(target, lm15.ProviderError):
        kwargs.update(status=exc.status, retry_after=exc.retry_after, provider_code=exc.code)
    if code is not None and target is not lm15.AuthError:
        kwargs["code"] = code
    message = f"{type(exc).__name__}: {exc}"
    error: Exception = target(message, **kwargs)
    return error
