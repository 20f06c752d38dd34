"""Anthropic API errors as typed dsrs errors, from the structured ``error.type``.

An error body is ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``
(https://docs.anthropic.com/en/api/errors); a stream reports the same object as an SSE ``error``
event (https://docs.anthropic.com/en/docs/build-with-claude/streaming#error-events).

=========================  ======  ====================================
``error.type``             HTTP    dsrs error
=========================  ======  ====================================
``invalid_request_error``  400     InvalidRequestError (ContextWindowExceededError for a too-long prompt)
``authentication_error``   401     AuthenticationError
``billing_error``          402     QuotaExceededError
``permission_error``       403     PermissionDeniedError
``not_found_error``        404     InvalidRequestError
``request_too_large``      413     InvalidRequestError (the request's bytes, not its tokens)
``rate_limit_error``       429     RateLimitError (``retry-after``, ``anthropic-ratelimit-*-reset``)
``api_error``              500     ProviderUnavailableError
``timeout_error``          504     LMTimeoutError
``overloaded_error``       529     ProviderUnavailableError
=========================  ======  ====================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from dsrs import errors
from dsrs.errors import ProviderFailure
from dsrs.wire import classify_by_status, retry_after_from_headers

__all__ = ["ERROR_TYPES", "RATE_LIMIT_RESET_HEADERS", "WIRE", "classify", "error_object", "retry_after"]

WIRE = "anthropic-messages"

#: Reset times (RFC 3339) of each limit a 429 may report (https://docs.anthropic.com/en/api/rate-limits).
RATE_LIMIT_RESET_HEADERS = (
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
)

_TYPES: Mapping[str, type[errors.LMError]] = {
    "invalid_request_error": errors.InvalidRequestError,
    "authentication_error": errors.AuthenticationError,
    "billing_error": errors.QuotaExceededError,
    "permission_error": errors.PermissionDeniedError,
    "not_found_error": errors.InvalidRequestError,
    "request_too_large": errors.InvalidRequestError,
    "rate_limit_error": errors.RateLimitError,
    "api_error": errors.ProviderUnavailableError,
    "timeout_error": errors.LMTimeoutError,
    "overloaded_error": errors.ProviderUnavailableError,
}
#: The documented ``error.type`` values.
ERROR_TYPES = frozenset(_TYPES)
_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_object(body: bytes | str) -> dict[str, Any] | None:
    """The ``error`` object of an Anthropic error body, or ``None`` when the body is not one."""
    try:
        data = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    return err if isinstance(err, dict) else None


def _reset_in(value: str, now: float) -> float | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``retry-after`` (seconds) when sent, else the latest ``anthropic-ratelimit-*-reset`` among
    the limits that are spent (``*-remaining: 0``), else the latest reset of all."""
    generic = retry_after_from_headers(headers)
    if generic is not None:
        return generic
    now = time.time()
    spent: list[float] = []
    every: list[float] = []
    for name in RATE_LIMIT_RESET_HEADERS:
        value = headers.get(name)
        wait = _reset_in(value, now) if value else None
        if wait is None:
            continue
        every.append(wait)
        if headers.get(name.replace("-reset", "-remaining"), "").strip() == "0":
            spent.append(wait)
    chosen = spent or every
    return max(chosen) if chosen else None


# The API gives a too-long prompt no error type or code of its own: it is an
# ``invalid_request_error`` whose message reads "prompt is too long: 210000 tokens > 200000 maximum".
# With no structured signal to go on, that documented message prefix is what is matched, and only
# on that error type (a prompt that quotes the phrase arrives in a 200, never here).
_TOO_LONG_PREFIXES = ("prompt is too long", "input is too long")
# Likewise a spent prepaid balance: an invalid_request_error, "Your credit balance is too low to
# access the Anthropic API..." (no billing_error type on that path).
_NO_CREDIT_PREFIX = "your credit balance is too low"


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """The typed error for an Anthropic failure (HTTP error body or stream ``error`` event), or
    ``None`` when nothing structured identifies it (then the HTTP status decides)."""
    err = error_object(failure.body)
    etype = err.get("type") if err is not None else None
    if not isinstance(etype, str) or not etype:
        etype = failure.code
    if not etype and failure.status == 413:
        # Cloudflare answers an oversized request before it reaches the API, with an HTML page.
        etype = "request_too_large"
    if not etype and failure.status == 529:
        etype = "overloaded_error"
    if not etype:
        return None
    if etype not in _TYPES:
        # An unknown type is echoed server text: it may carry the key (LMError redacts messages and
        # bodies, not codes), so it is redacted and bounded here.
        etype = (errors.redact(etype, failure.secrets) or "")[:64] or "unknown_error"
    message = err.get("message") if err is not None else None
    if not isinstance(message, str) or not message:
        message = failure.message or etype.replace("_", " ")
    cls = _TYPES.get(etype)
    if cls is None:
        # A type added after this table: the status it came with decides (keeping the type and
        # message); a stream error with an unknown type is still a provider-side fault.
        known = _BY_STATUS.get(failure.status or 0)
        if known:
            cls = _TYPES[known]
        elif failure.status is not None:
            return classify_by_status(replace(failure, code=etype, message=message))
        else:
            cls = errors.ProviderUnavailableError
    lowered = message.lower()
    if etype == "invalid_request_error" and lowered.startswith(_TOO_LONG_PREFIXES):
        cls = errors.ContextWindowExceededError
    elif etype == "invalid_request_error" and lowered.startswith(_NO_CREDIT_PREFIX):
        cls = errors.QuotaExceededError
    kw: dict[str, Any] = dict(
        provider=failure.provider,
        model=failure.model,
        status=failure.status,
        body=failure.body,
        code=etype,
        secrets=failure.secrets,
    )
    if cls in (errors.RateLimitError, errors.ProviderUnavailableError):
        kw["retry_after"] = retry_after(failure.headers)
    if etype == "not_found_error" and failure.model:
        message = f"{message} (model {failure.model!r})"
    return cls(message, **kw)
