"""Table-driven error classification, over real HTTP on loopback, with the vendors' documented bodies.

Sources of the bodies (shapes and codes; messages shortened):
* OpenAI — https://platform.openai.com/docs/guides/error-codes (401 invalid_api_key, 429
  rate_limit_exceeded vs insufficient_quota, 403 unsupported_country_region_territory, 500/503), the
  ``error`` object ``{message, type, param, code}`` of the API reference; context_length_exceeded and
  model_not_found as the API returns them (community.openai.com threads on error codes).
* Groq — https://console.groq.com/docs/errors (``{"error": {"message", "type", "code"}}``; 429 with
  ``type: "tokens"``, ``code: "rate_limit_exceeded"`` and ``retry-after``; 498 flex capacity).
* Cerebras — https://inference-docs.cerebras.ai/support/error (status table); bodies are top-level
  ``{message, type, param, code}`` as recorded in public client code: 404 ``not_found_error`` /
  ``model_not_found``, 429 ``too_many_requests_error`` / ``request_quota_exceeded`` (a per-minute
  limit: a rate limit, not a spent quota), 429 ``queue_exceeded``.
* Mistral — top-level ``{"object": "error", "message", "type", "param", "code"}``.
* OpenRouter — https://openrouter.ai/docs/api-reference/errors (``{"error": {"code": 402, "message"}}``).
* DeepSeek — https://api-docs.deepseek.com/quick_start/error_codes (402 Insufficient Balance, 503).
* xAI — ``{"code": "...", "error": "message"}``.
"""

from __future__ import annotations

from typing import Any

import pytest

import dsrs
from dsrs import errors
from dsrs.testing import Reply

from .conftest import SECRET

E = errors


def _openai(message: str, type_: str | None, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


CASES: list[tuple[str, str, Reply, type[errors.LMError], float | None]] = [
    # provider, model, reply, expected class, expected retry_after
    (
        "openai",
        "gpt-4o",
        Reply(401, _openai("Incorrect API key provided: sk-abc***xyz.", "invalid_request_error", "invalid_api_key")),
        E.AuthenticationError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            429,
            _openai(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            ),
        ),
        E.QuotaExceededError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            429,
            _openai(
                "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000. Please try again in 2.5s.",
                "tokens",
                "rate_limit_exceeded",
            ),
            headers={"x-ratelimit-reset-tokens": "2.5s", "x-ratelimit-reset-requests": "120ms"},
        ),
        E.RateLimitError,
        2.5,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            429,
            _openai("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
            headers={"retry-after-ms": "1500"},
        ),
        E.RateLimitError,
        1.5,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            429,
            _openai("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
            headers={"retry-after": "20"},
        ),
        E.RateLimitError,
        20.0,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            403,
            _openai(
                "Country, region, or territory not supported",
                "request_forbidden",
                "unsupported_country_region_territory",
            ),
        ),
        E.PermissionDeniedError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            400,
            _openai(
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            ),
        ),
        E.ContextWindowExceededError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            400,
            _openai(
                "Your request was rejected as a result of our safety system.",
                "invalid_request_error",
                "content_policy_violation",
            ),
        ),
        E.ContentFilterError,
        None,
    ),
    (
        "openai",
        "gpt-99",
        Reply(
            404,
            _openai(
                "The model `gpt-99` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            ),
        ),
        E.InvalidRequestError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            400,
            _openai(
                "Unsupported parameter: 'temperature'", "invalid_request_error", "unsupported_parameter", "temperature"
            ),
        ),
        E.InvalidRequestError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            500,
            _openai("The server had an error while processing your request. Sorry about that!", "server_error", None),
        ),
        E.ProviderUnavailableError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            503,
            _openai("The engine is currently overloaded, please try again later.", "server_error", None),
            headers={"retry-after": "3"},
        ),
        E.ProviderUnavailableError,
        3.0,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", headers={"content-type": "text/html"}),
        E.ProviderUnavailableError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(
            403,
            "<html><head><title>Attention Required! | Cloudflare</title></head></html>",
            headers={"content-type": "text/html"},
        ),
        E.ResponseParseError,
        None,
    ),
    (
        "openai",
        "gpt-4o",
        Reply(200, "<!DOCTYPE html><html>captive portal</html>", headers={"content-type": "text/html"}),
        E.ResponseParseError,
        None,
    ),
    (
        "groq",
        "llama-3.3-70b-versatile",
        Reply(
            429,
            {
                "error": {
                    "message": "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5800, Requested 400. Please try again in 2s.",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            },
            headers={"retry-after": "2"},
        ),
        E.RateLimitError,
        2.0,
    ),
    (
        "groq",
        "mixtral-8x7b",
        Reply(
            404,
            {
                "error": {
                    "message": "The model `mixtral-8x7b` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
        ),
        E.InvalidRequestError,
        None,
    ),
    (
        "groq",
        "llama-3.1-8b-instant",
        Reply(
            401, {"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}}
        ),
        E.AuthenticationError,
        None,
    ),
    (
        "groq",
        "llama-3.1-8b-instant",
        Reply(
            498,
            {
                "error": {
                    "message": "Flex tier capacity exceeded. Please try again later.",
                    "type": "capacity_exceeded",
                    "code": "capacity_exceeded",
                }
            },
        ),
        E.ProviderUnavailableError,
        None,
    ),
    (
        "groq",
        "llama-3.1-8b-instant",
        Reply(
            400,
            {
                "error": {
                    "message": "Please reduce the length of the messages or completion.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        ),
        E.ContextWindowExceededError,
        None,
    ),
    (
        "cerebras",
        "llama3.1-70b",
        Reply(
            404,
            {
                "message": "Model llama3.1-70b does not exist or you do not have access to it.",
                "type": "not_found_error",
                "param": "model",
                "code": "model_not_found",
            },
        ),
        E.InvalidRequestError,
        None,
    ),
    (
        "cerebras",
        "llama3.1-8b",
        Reply(
            429,
            {
                "message": "Requests per minute limit exceeded - too many requests sent.",
                "type": "too_many_requests_error",
                "param": "quota",
                "code": "request_quota_exceeded",
            },
            headers={"retry-after": "4"},
        ),
        E.RateLimitError,
        4.0,
    ),
    (
        "cerebras",
        "llama3.1-8b",
        Reply(
            429,
            {
                "message": "We're experiencing high traffic right now! Please try again soon.",
                "type": "too_many_requests_error",
                "param": "queue",
                "code": "queue_exceeded",
            },
        ),
        E.RateLimitError,
        None,
    ),
    (
        "cerebras",
        "llama3.1-8b",
        Reply(
            401,
            {"message": "Wrong API Key", "type": "invalid_request_error", "param": "api_key", "code": "wrong_api_key"},
        ),
        E.AuthenticationError,
        None,
    ),
    (
        "cerebras",
        "llama3.1-8b",
        Reply(
            402,
            {
                "message": "Payment required: your credit is exhausted.",
                "type": "payment_required",
                "param": None,
                "code": "payment_required",
            },
        ),
        E.QuotaExceededError,
        None,
    ),
    (
        "cerebras",
        "llama3.1-8b",
        Reply(
            400,
            {
                "message": "Please reduce the length of the messages or completion. Current length is 9000 while limit is 8192",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            },
        ),
        E.ContextWindowExceededError,
        None,
    ),
    (
        "mistral",
        "mistral-small-latest",
        Reply(
            429,
            {
                "object": "error",
                "message": "Requests rate limit exceeded",
                "type": "rate_limited",
                "param": None,
                "code": "1300",
            },
        ),
        E.RateLimitError,
        None,
    ),
    (
        "mistral",
        "mistral-tiny-x",
        Reply(
            400,
            {
                "object": "error",
                "message": "Invalid model: mistral-tiny-x",
                "type": "invalid_model",
                "param": None,
                "code": "1500",
            },
        ),
        E.InvalidRequestError,
        None,
    ),
    (
        "openrouter",
        "openai/gpt-4o",
        Reply(402, {"error": {"code": 402, "message": "This request requires more credits, or fewer max_tokens."}}),
        E.QuotaExceededError,
        None,
    ),
    (
        "openrouter",
        "openai/gpt-4o",
        Reply(
            200, {"error": {"code": 429, "message": "Provider returned error", "metadata": {"provider_name": "OpenAI"}}}
        ),
        E.RateLimitError,
        None,
    ),
    (
        "openrouter",
        "openai/gpt-4o",
        Reply(
            403,
            {
                "error": {
                    "code": 403,
                    "message": "Your chosen model requires moderation and your input was flagged",
                    "metadata": {"reasons": ["violence"]},
                }
            },
        ),
        E.PermissionDeniedError,
        None,
    ),
    (
        "deepseek",
        "deepseek-chat",
        Reply(
            402,
            {
                "error": {
                    "message": "Insufficient Balance",
                    "type": "unknown_error",
                    "param": None,
                    "code": "invalid_request_error",
                }
            },
        ),
        E.QuotaExceededError,
        None,
    ),
    (
        "deepseek",
        "deepseek-chat",
        Reply(503, {"error": {"message": "Server overloaded", "type": "server_error", "param": None, "code": None}}),
        E.ProviderUnavailableError,
        None,
    ),
    (
        "xai",
        "grok-3-mini",
        Reply(
            400,
            {
                "code": "Client specified an invalid argument",
                "error": "Incorrect API key provided: xa***xy. You can obtain an API key from https://console.x.ai.",
            },
        ),
        E.InvalidRequestError,
        None,
    ),
    (
        "xai",
        "grok-4",
        Reply(401, {"code": "Unauthenticated", "error": "No API key provided."}),
        E.AuthenticationError,
        None,
    ),
]


@pytest.mark.parametrize(
    ("provider", "model", "reply", "expected", "retry_after"),
    CASES,
    ids=[f"{c[0]}-{c[2].status}-{c[3].__name__}-{i}" for i, c in enumerate(CASES)],
)
@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_error_bodies_classify(
    server: Any,
    provider: str,
    model: str,
    reply: Reply,
    expected: type[errors.LMError],
    retry_after: float | None,
    stream: bool,
) -> None:
    server.push(reply)
    lm = dsrs.LM(f"{provider}:{model}", base_url=server.url, api_key=SECRET)

    def run() -> object:
        return list(lm.stream("hi")) if stream else lm.call("hi")

    with pytest.raises(errors.LMError) as info:
        run()
    err = info.value
    assert type(err) is expected, f"{type(err).__name__}: {err}"
    assert err.provider == provider
    assert err.retry_after == retry_after
    if reply.status == 404:
        assert model in str(err)
    assert SECRET not in str(err) and SECRET not in repr(err) and SECRET not in (err.body or "")


def test_truncated_body_is_a_parse_error(server: Any) -> None:
    server.push(Reply(200, {"id": "x", "choices": [{"message": {"content": "a" * 500}}]}, truncate_to=40))
    with pytest.raises(errors.ResponseParseError):
        dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET).call("hi")


def test_stream_cut_before_the_end_is_a_parse_error(server: Any) -> None:
    chunk = 'data: {"choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}\n\n'
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=[chunk]))
    with pytest.raises(errors.ResponseParseError, match="stream ended"):
        list(dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET).stream("hi"))


def test_error_in_the_middle_of_a_stream(server: Any) -> None:
    events = [
        'data: {"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n',
        'data: {"error":{"message":"The server had an error","type":"server_error","code":null}}\n\n',
    ]
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=events))
    with pytest.raises(errors.ProviderUnavailableError):
        list(dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET).stream("hi"))


def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(errors.ProviderUnavailableError):
        dsrs.LM("groq:llama-3.1-8b-instant", base_url="http://127.0.0.1:9", api_key=SECRET, timeout=5).call("hi")


def test_a_429_inside_the_prompt_is_not_a_rate_limit(server: Any) -> None:
    r = dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET).call("error 429 rate_limit_exceeded insufficient_quota")
    assert r.text.startswith("error 429")


# --- Responses API failures (https://platform.openai.com/docs/api-reference/responses-streaming) ---

RESP_SHELL = {"id": "resp_1", "object": "response", "status": "in_progress", "model": "codex-mini-latest", "output": []}


def _ev(obj: dict[str, Any]) -> str:
    import json

    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            [
                _ev({"type": "response.created", "response": RESP_SHELL}),
                _ev(
                    {
                        "type": "response.failed",
                        "response": {
                            **RESP_SHELL,
                            "status": "failed",
                            "error": {"code": "server_error", "message": "The model failed to generate a response."},
                        },
                    }
                ),
            ],
            E.ProviderUnavailableError,
        ),
        (
            [
                _ev({"type": "response.created", "response": RESP_SHELL}),
                _ev(
                    {
                        "type": "response.failed",
                        "response": {
                            **RESP_SHELL,
                            "status": "failed",
                            "error": {"code": "rate_limit_exceeded", "message": "Rate limit reached"},
                        },
                    }
                ),
            ],
            E.RateLimitError,
        ),
        (
            [
                _ev(
                    {
                        "type": "error",
                        "code": "context_length_exceeded",
                        "message": "Your input exceeds the context window of this model.",
                        "param": None,
                        "sequence_number": 1,
                    }
                )
            ],
            E.ContextWindowExceededError,
        ),
        (
            [
                _ev(
                    {
                        "type": "error",
                        "code": "invalid_prompt",
                        "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
                        "param": None,
                    }
                )
            ],
            E.ContentFilterError,
        ),
        (
            [
                _ev({"type": "response.created", "response": RESP_SHELL}),
                _ev(
                    {
                        "type": "response.output_text.delta",
                        "item_id": "m",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": "Hel",
                    }
                ),
            ],
            E.ResponseParseError,
        ),
        (
            [
                _ev(
                    {
                        "type": "response.incomplete",
                        "response": {
                            **RESP_SHELL,
                            "status": "incomplete",
                            "incomplete_details": {"reason": "content_filter"},
                        },
                    }
                )
            ],
            E.ContentFilterError,
        ),
    ],
)
def test_responses_stream_failures(server: Any, events: list[str], expected: type[errors.LMError]) -> None:
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=events))
    with pytest.raises(expected):
        list(dsrs.LM("codex-mini-latest", base_url=server.url, api_key=SECRET).stream("hi"))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(429, _openai("You exceeded your current quota", "insufficient_quota", "insufficient_quota")),
            E.QuotaExceededError,
        ),
        (
            Reply(
                404,
                _openai(
                    "The model `codex-3-opus` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            ),
            E.InvalidRequestError,
        ),
        (
            Reply(200, {**RESP_SHELL, "status": "failed", "error": {"code": "server_error", "message": "boom"}}),
            E.ProviderUnavailableError,
        ),
        (
            Reply(
                200,
                {
                    **RESP_SHELL,
                    "status": "completed",
                    "output": [
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "refusal", "refusal": "I can't help with that."}],
                        }
                    ],
                },
            ),
            E.ContentFilterError,
        ),
        (Reply(200, "<html>oops</html>"), E.ResponseParseError),
        (Reply(200, {"id": "resp_1", "object": "response"}), E.ResponseParseError),
    ],
)
def test_responses_http_failures(server: Any, reply: Reply, expected: type[errors.LMError]) -> None:
    server.push(reply)
    with pytest.raises(expected) as info:
        dsrs.LM("codex-3-opus", base_url=server.url, api_key=SECRET).call("hi")
    assert info.value.provider == "openai"
    if reply.status == 404:
        assert "codex-3-opus" in str(info.value)
