"""Table-driven classification of Gemini API errors, from error.status and error.details.

Bodies are the API's own (google.rpc.Status JSON): the status table of the troubleshooting guide
(ai.google.dev/gemini-api/docs/troubleshooting); API_KEY_INVALID as answered by the API (quoted in
cequence-io/openai-scala-client#109); the 429 with QuotaFailure + RetryInfo as returned for a spent
free-tier daily quota (e.g. https://oppl.ai/llms/gemini_complex_1/JE00B3XR4V72.json); the
token-limit 400 as reported in google-gemini/gemini-cli#4118.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import dsrs
from dsrs._failures import classify_failure as _classify_failure
from dsrs.errors import LMError
from dsrs.plugins import ProviderFailure
from dsrs_google import wire


def classify_failure(failure: ProviderFailure) -> LMError:
    """What the provider raises: the hook, then its codec (GeminiCodec.classify), then the status."""
    return _classify_failure(failure, codec=wire.GeminiCodec())


RPC = "type.googleapis.com/google.rpc."
SECRET = "AIzaSyLEAKED-0123456789abcdefghijklmn"


def status(code: int, name: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": name}
    if details:
        err["details"] = list(details)
    return {"error": err}


def quota(quota_id: str, value: str = "250") -> dict[str, Any]:
    return {
        "@type": RPC + "QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": value,
            }
        ],
    }


RETRY = {"@type": RPC + "RetryInfo", "retryDelay": "37s"}
HELP = {
    "@type": RPC + "Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}
KEY_INVALID = {
    "@type": RPC + "ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
    "metadata": {"service": "generativelanguage.googleapis.com"},
}

CASES: list[tuple[str, int, Any, type[dsrs.LMError], float | None]] = [
    (
        "per-minute quota is a rate limit, retry after RetryInfo",
        429,
        status(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota.",
            quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10"),
            HELP,
            RETRY,
        ),
        dsrs.RateLimitError,
        37.0,
    ),
    (
        "per-day quota is spent",
        429,
        status(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            HELP,
            {"@type": RPC + "RetryInfo", "retryDelay": "22s"},
        ),
        dsrs.QuotaExceededError,
        22.0,
    ),
    (
        "a quota of 0 (model not in this tier) is spent",
        429,
        status(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded.",
            quota("GenerateContentInputTokensPerModelPerMinute-FreeTier", "0"),
            RETRY,
        ),
        dsrs.QuotaExceededError,
        37.0,
    ),
    (
        "429 without details",
        429,
        status(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        dsrs.RateLimitError,
        5.0,
    ),
    (
        "bad key",
        400,
        status(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", KEY_INVALID),
        dsrs.AuthenticationError,
        None,
    ),
    (
        "bad request",
        400,
        status(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "foo"'),
        dsrs.InvalidRequestError,
        None,
    ),
    (
        "token limit",
        400,
        status(
            400,
            "INVALID_ARGUMENT",
            "The input token count (132478) exceeds the maximum number of tokens allowed (131072).",
        ),
        dsrs.ContextWindowExceededError,
        None,
    ),
    (
        "free tier not in this country",
        400,
        status(
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use without a billing account linked.",
        ),
        dsrs.PermissionDeniedError,
        None,
    ),
    (
        "permission denied",
        403,
        status(403, "PERMISSION_DENIED", "Your API key doesn't have the required permissions."),
        dsrs.PermissionDeniedError,
        None,
    ),
    (
        "unauthenticated",
        401,
        status(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
        dsrs.AuthenticationError,
        None,
    ),
    (
        "unknown model",
        404,
        status(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
        dsrs.InvalidRequestError,
        None,
    ),
    ("internal", 500, status(500, "INTERNAL", "An internal error has occurred."), dsrs.ProviderUnavailableError, None),
    (
        "overloaded",
        503,
        status(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        dsrs.ProviderUnavailableError,
        None,
    ),
    (
        "deadline",
        504,
        status(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        dsrs.LMTimeoutError,
        None,
    ),
    ("HTML from a proxy", 400, b"<!DOCTYPE html><html><body>Bad Request</body></html>", dsrs.ResponseParseError, None),
    ("empty 502", 502, b"", dsrs.ProviderUnavailableError, None),
    (
        "error as a JSON array (streamGenerateContent without alt=sse)",
        429,
        [status(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", quota("GenerateRequestsPerDayPerProjectPerModel"))],
        dsrs.QuotaExceededError,
        None,
    ),
]


def failure(http: int | None, body: Any, *, headers: dict[str, str] | None = None) -> ProviderFailure:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ProviderFailure(
        "google", "gemini-2.5-flash", http, headers or {"retry-after": "5"}, raw, wire=wire.WIRE, secrets=(SECRET,)
    )


@pytest.mark.parametrize(("case", "http", "body", "cls", "retry_after"), CASES, ids=[c[0] for c in CASES])
def test_classification_table(
    case: str, http: int, body: Any, cls: type[dsrs.LMError], retry_after: float | None
) -> None:
    err = classify_failure(failure(http, body))
    assert type(err) is cls, f"{case}: {err!r}"
    assert err.provider == "google" and err.model == "gemini-2.5-flash" and err.status == http
    if retry_after is not None:
        assert err.retry_after == retry_after


def test_status_name_is_the_error_code() -> None:
    err = classify_failure(failure(503, status(503, "UNAVAILABLE", "overloaded")))
    assert err.code == "UNAVAILABLE"


def test_retry_delay_with_fraction_and_proto_form() -> None:
    assert wire.retry_delay({"details": [{"@type": RPC + "RetryInfo", "retryDelay": "0.5s"}]}) == 0.5
    assert (
        wire.retry_delay({"details": [{"@type": RPC + "RetryInfo", "retryDelay": {"seconds": 3, "nanos": 500000000}}]})
        == 3.5
    )
    assert wire.retry_delay({"details": [HELP]}) is None


def test_token_limit_text_inside_another_message_is_not_a_context_error() -> None:
    # Only the server's own sentence, whole, counts; a message merely containing it does not.
    message = (
        'Invalid value at "contents[0]": "The input token count (1) exceeds the maximum number of tokens allowed (2)."'
    )
    err = classify_failure(failure(400, status(400, "INVALID_ARGUMENT", message)))
    assert type(err) is dsrs.InvalidRequestError


def test_prompt_text_never_decides_the_class() -> None:
    # A 400 whose message echoes "RESOURCE_EXHAUSTED 429 quota" is still a 400 INVALID_ARGUMENT.
    err = classify_failure(
        failure(400, status(400, "INVALID_ARGUMENT", "bad prompt: RESOURCE_EXHAUSTED 429 PerDay quota"))
    )
    assert type(err) is dsrs.InvalidRequestError


def test_secrets_are_redacted_from_errors() -> None:
    body = status(400, "INVALID_ARGUMENT", f"API key not valid: {SECRET}", KEY_INVALID)
    err = classify_failure(failure(400, body))
    for text in (str(err), repr(err), err.body or ""):
        assert SECRET not in text


def test_no_hook_of_its_own_the_codec_classifies() -> None:
    from dsrs_google import _plugin

    assert not hasattr(_plugin, "dsrs_classify_error")
    other = ProviderFailure(
        "openai", "gpt-4o", 429, {}, json.dumps(status(429, "RESOURCE_EXHAUSTED", "x")).encode(), wire="openai-chat"
    )
    # Without the Gemini codec a Gemini-shaped body is classified by its status only.
    assert type(_classify_failure(other)) is dsrs.RateLimitError
