"""Errors carry provider/model/status/retry_after and never leak secrets."""

from __future__ import annotations

import pickle

import dsrs
from dsrs.errors import redact


def test_known_secret_and_key_shapes_are_masked() -> None:
    body = "error: key sk-proj-abcdefghijklmnop rejected; Authorization: Bearer abc.def.ghijkl; AIzaSyA1234567890abcdefghijkl"
    out = redact(body, secrets=["my-own-secret-value"]) or ""
    assert "sk-proj-abcdefghijklmnop" not in out and "abc.def.ghijkl" not in out and "AIzaSyA1234567890" not in out
    assert redact("x my-own-secret-value y", ["my-own-secret-value"]) == "x *** y"


def test_long_bodies_are_truncated() -> None:
    out = redact("a" * 10_000) or ""
    assert len(out) < 2100 and "more chars" in out


def test_error_fields_and_str() -> None:
    e = dsrs.RateLimitError("slow down", provider="openai", model="gpt-4o", status=429, retry_after=2.5)
    assert e.retryable and not dsrs.QuotaExceededError("x").retryable
    assert str(e) == "[openai:gpt-4o] slow down (HTTP 429) retry after 2.5s"
    assert isinstance(e, dsrs.LMError)


def test_secret_never_in_error_text_or_body() -> None:
    secret = "sk-live-0123456789abcdef"
    e = dsrs.AuthenticationError(f"bad key {secret}", body=f'{{"key": "{secret}"}}', secrets=[secret])
    assert secret not in str(e) and secret not in repr(e) and secret not in (e.body or "")


def test_errors_pickle_with_their_fields() -> None:
    e = dsrs.RateLimitError("slow", provider="groq", model="m", status=429, retry_after=1.0)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is dsrs.RateLimitError and e2.retry_after == 1.0 and e2.provider == "groq"


def test_hierarchy() -> None:
    assert issubclass(dsrs.ContextWindowExceededError, dsrs.InvalidRequestError)
    assert issubclass(dsrs.ProviderLoadError, dsrs.UnknownModelError)
