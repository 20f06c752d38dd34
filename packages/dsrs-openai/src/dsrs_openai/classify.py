"""Error classification for OpenAI and the OpenAI-wire vendors (the ``dsrs_classify_error`` hook).

Structured fields first (``error.code`` / ``error.type``), then the HTTP status; body text is never
searched. Vendors differ in the envelope, not the meaning, so every shape is normalised first:

* OpenAI, Groq, DeepSeek, Together: ``{"error": {"message", "type", "param", "code"}}``;
* Cerebras: the same fields at the top level (``{"message", "type", "param", "code"}``);
* Mistral: top level with ``"object": "error"``;
* OpenRouter: ``{"error": {"code": 402, "message", "metadata"}}`` (a numeric code = HTTP status);
* xAI: ``{"code": "...", "error": "message"}``;
* Responses API stream ``error`` events: ``{"type": "error", "code", "message"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsrs import errors
from dsrs.errors import ProviderFailure
from dsrs.wire import classify_by_status, retry_after_from_headers

__all__ = ["classify", "error_fields"]

_QUOTA = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded", "insufficient_balance", "payment_required"}
)
_RATE = frozenset(
    {
        "rate_limit_exceeded",
        "rate_limit_error",
        "too_many_requests_error",
        "tokens_rate_limit_exceeded",
        "rate_limited",
        "requests",
        "tokens",
        "queue_exceeded",
    }
)
_CONTEXT = frozenset(
    {"context_length_exceeded", "string_above_max_length", "context_window_exceeded", "request_too_large"}
)
_FILTER = frozenset(
    {
        "content_policy_violation",
        "content_filter",
        "invalid_prompt",
        "responsible_ai_policy_violation",
        "moderation_blocked",
    }
)
_AUTH = frozenset(
    {
        "invalid_api_key",
        "wrong_api_key",
        "authentication_error",
        "invalid_authentication",
        "incorrect_api_key",
        "unauthorized",
    }
)
_PERMISSION = frozenset(
    {
        "permission_denied",
        "permission_error",
        "permission_denied_error",
        "unsupported_country_region_territory",
        "model_not_allowed",
    }
)
_NOT_FOUND = frozenset({"model_not_found", "model_not_available", "not_found_error", "model_decommissioned"})
_UNAVAILABLE = frozenset(
    {
        "server_error",
        "overloaded_error",
        "service_unavailable",
        "engine_overloaded",
        "server_is_overloaded",
        "capacity_exceeded",
        "internal_error",
        "api_error",
        "service_unavailable_error",
    }
)
#: Non-standard statuses: Groq 498 (flex capacity), Anthropic-style 529 (overloaded) behind routers.
_UNAVAILABLE_STATUSES = frozenset({498, 529})
_ENVELOPE_KEYS = ("message", "type", "code")


def _json(body: bytes) -> Any:
    import json

    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def error_fields(body: bytes) -> dict[str, Any] | None:
    """The error object of any supported vendor envelope, normalised to ``message``/``type``/``code``."""
    data = _json(body)
    if isinstance(data, list) and data and isinstance(data[0], Mapping):  # some gateways wrap in a list
        data = data[0]
    if not isinstance(data, Mapping):
        return None
    err = data.get("error")
    if isinstance(err, Mapping):
        return dict(err)
    if isinstance(err, str):  # xAI / llama.cpp style: {"code": "...", "error": "message"}
        return {"message": err, "code": data.get("code"), "type": data.get("type")}
    if (
        data.get("object") == "error"
        or data.get("type") == "error"
        or ("choices" not in data and "output" not in data and "message" in data and ("type" in data or "code" in data))
    ):
        return {k: data.get(k) for k in (*_ENVELOPE_KEYS, "param")}
    return None


def _status_hint(fields: Mapping[str, Any], status: int | None) -> int | None:
    code = fields.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 and (status is None or status < 400):
        return code  # OpenRouter puts the real status in error.code (also inside 200 streams)
    return status


def classify(failure: ProviderFailure) -> errors.LMError | None:
    """A typed error for an OpenAI-wire failure, or ``None`` when there is nothing to classify."""
    if failure.status is None and not failure.body:
        return None  # a transport exception: the generic exception classification applies
    fields = error_fields(failure.body)
    if fields is None:
        if failure.status is not None and 200 <= failure.status < 300:
            return None
        if failure.body.lstrip()[:1] == b"<" and (failure.status is None or failure.status < 500):
            return errors.ResponseParseError(
                f"HTML body with HTTP {failure.status}" if failure.status else "HTML body where JSON was expected",
                provider=failure.provider,
                model=failure.model,
                status=failure.status,
                body=failure.body,
                secrets=failure.secrets,
            )
        if failure.status in _UNAVAILABLE_STATUSES:
            return errors.ProviderUnavailableError(
                f"provider over capacity ({failure.status})",
                provider=failure.provider,
                model=failure.model,
                status=failure.status,
                retry_after=retry_after_from_headers(failure.headers),
                body=failure.body,
                secrets=failure.secrets,
            )
        return classify_by_status(failure) if failure.status is not None else None
    status = _status_hint(fields, failure.status)
    code = str(fields.get("code") or "").lower() if not isinstance(fields.get("code"), int) else ""
    etype = str(fields.get("type") or "").lower()
    message = str(fields.get("message") or "").strip() or None
    keys = {code, etype} - {""}
    kw: dict[str, Any] = dict(
        provider=failure.provider,
        model=failure.model,
        status=failure.status if failure.status is not None else status,
        body=failure.body,
        code=code or etype or None,
        secrets=failure.secrets,
    )
    if keys & _QUOTA or status == 402:
        return errors.QuotaExceededError(message or "quota or credit exhausted", **kw)
    if keys & _RATE or status == 429:
        return errors.RateLimitError(
            message or "rate limited", retry_after=retry_after_from_headers(failure.headers), **kw
        )
    if keys & _CONTEXT or status == 413:
        return errors.ContextWindowExceededError(message or "context window exceeded", **kw)
    if keys & _FILTER:
        return errors.ContentFilterError(message or "blocked by the content policy", **kw)
    if keys & _AUTH or status == 401:
        return errors.AuthenticationError(message or "authentication failed (check the API key)", **kw)
    if keys & _PERMISSION or status == 403:
        return errors.PermissionDeniedError(message or "permission denied", **kw)
    if keys & _NOT_FOUND or status == 404:
        what = f"model {failure.model!r} not found" if failure.model else "not found"
        return errors.InvalidRequestError(f"{what}: {message}" if message else what, **kw)
    if keys & _UNAVAILABLE or (status is not None and (status >= 500 or status in _UNAVAILABLE_STATUSES)):
        return errors.ProviderUnavailableError(
            message or f"server error {status}", retry_after=retry_after_from_headers(failure.headers), **kw
        )
    if status is None or 200 <= status < 300:
        return errors.ProviderUnavailableError(message or "error reported in the stream", **kw)
    sub = ProviderFailure(
        failure.provider,
        failure.model,
        status,
        failure.headers,
        failure.body,
        code=code or etype or None,
        message=message,
        secrets=failure.secrets,
    )
    return classify_by_status(sub)
