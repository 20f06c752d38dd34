"""From a failed call to a typed error: the layered classification every provider uses.

Order: the ``dsrs_classify_error`` hook (plugins, including the codecs' own classifiers, read
structured fields such as an error ``code``), then the HTTP status, then the exception type. Body
text is never searched: it may echo the user's prompt (a "429" in a prompt is not a rate limit).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dsrs import errors
from dsrs.plugins._types import ProviderFailure

if TYPE_CHECKING:
    from dsrs.wire._codec import Codec

from dsrs.transport._base import (
    BodyDecodeError,
    BodyTooLargeError,
    ConnectError,
    ReadError,
    TransportError,
    TransportTimeout,
    TruncatedBodyError,
)

__all__ = ["classify_by_status", "classify_failure", "parse_duration", "retry_after_from_headers"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Parse ``"1.5"``, ``"20ms"``, ``"6m0s"``, ``"1h2m3.5s"`` into seconds (``None`` if not a duration)."""
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            return None
        value, unit = float(m.group(1)), m.group(2)
        total += value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` (seconds or HTTP date) or
    ``x-ratelimit-reset-requests``/``-tokens`` (the larger of the two). Keys must be lower-case."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra:
        secs = parse_duration(ra)
        if secs is not None:
            return secs
        try:
            when = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    resets = [
        d
        for d in (
            parse_duration(headers.get(k, "")) for k in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        )
        if d is not None
    ]
    return max(resets) if resets else None


def _message(failure: ProviderFailure, fallback: str) -> str:
    return failure.message or fallback


def classify_by_status(failure: ProviderFailure) -> errors.LMError | None:
    """The generic HTTP-status classification (the second layer)."""
    status = failure.status
    if status is None or 200 <= status < 300:
        return None
    kw: dict[str, Any] = dict(
        provider=failure.provider,
        model=failure.model,
        status=status,
        body=failure.body,
        code=failure.code,
        secrets=failure.secrets,
    )
    if status == 429:
        return errors.RateLimitError(
            _message(failure, "rate limited"), retry_after=retry_after_from_headers(failure.headers), **kw
        )
    if status == 401:
        return errors.AuthenticationError(_message(failure, "authentication failed (check the API key)"), **kw)
    if status == 402:
        return errors.QuotaExceededError(_message(failure, "payment required (credit or quota spent)"), **kw)
    if status == 403:
        return errors.PermissionDeniedError(_message(failure, "permission denied"), **kw)
    if status == 404:
        what = f"model {failure.model!r} or endpoint not found" if failure.model else "endpoint not found"
        return errors.InvalidRequestError(_message(failure, what), **kw)
    if status in (408, 504):
        return errors.LMTimeoutError(_message(failure, "the server timed out"), **kw)
    if status == 413:
        return errors.ContextWindowExceededError(_message(failure, "request too large"), **kw)
    if status >= 500:
        return errors.ProviderUnavailableError(
            _message(failure, f"server error {status}"),
            retry_after=retry_after_from_headers(failure.headers),
            **kw,
        )
    return errors.InvalidRequestError(_message(failure, f"request rejected ({status})"), **kw)


def _classify_exception(failure: ProviderFailure) -> errors.LMError:
    exc = failure.exception
    kw: dict[str, Any] = dict(provider=failure.provider, model=failure.model, secrets=failure.secrets)
    if isinstance(exc, errors.LMError):
        return exc
    text = str(exc) if exc is not None else (failure.message or "unknown failure")
    if isinstance(exc, (TransportTimeout, TimeoutError)):
        return errors.LMTimeoutError(f"timed out: {text}", **kw)
    if isinstance(exc, (BodyTooLargeError, BodyDecodeError)):  # the text names the bound or the encoding
        err = errors.ResponseParseError(f"unusable response: {text}", **kw)
        # The same server would send the same body again: fetching it twice more helps nobody (a
        # LaneMux still moves on to the next lane).
        err.retryable = False
        return err
    if isinstance(exc, TruncatedBodyError):
        return errors.ResponseParseError(f"truncated body: {text}", body=failure.body, **kw)
    if isinstance(exc, ConnectError):
        return errors.ProviderUnavailableError(f"cannot connect: {text}", **kw)
    if isinstance(exc, (ReadError, TransportError, ConnectionError, OSError)):
        return errors.ProviderUnavailableError(f"connection failed: {text}", **kw)
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return errors.ResponseParseError(f"unexpected response: {text}", body=failure.body, **kw)
    return errors.LMError(_message(failure, text), **kw)


def classify_failure(failure: ProviderFailure, codec: Codec | None = None) -> errors.LMError:
    """Classify ``failure`` into a typed :class:`~dsrs.errors.LMError` (never returns ``None``):
    the ``dsrs_classify_error`` hook, then ``codec.classify``, then the status, then the exception."""
    if isinstance(failure.exception, errors.LMError):
        return failure.exception
    from dsrs.plugins import hooks

    try:
        err = hooks().classify_error(failure.provider, failure)
    except Exception:  # a broken classifier must not hide the real failure
        err = None
    if err is None and codec is not None:
        try:
            err = codec.classify(failure)
        except Exception:
            err = None
    if err is not None:
        return err
    if failure.status is not None:
        by_status = classify_by_status(failure)
        if by_status is not None:
            return by_status
    return _classify_exception(failure)
