"""Table-driven classification of Ollama failures (bodies as in docs.ollama.com/api/errors)."""

from __future__ import annotations

import json

import pytest

import dsrs
from dsrs._failures import classify_failure as _classify_failure
from dsrs.plugins import ProviderFailure
from dsrs.transport import ConnectError, ReadError
from dsrs_ollama import wire


def classify_failure(failure: ProviderFailure) -> dsrs.LMError:
    """What the provider raises: the hook, then its codec (OllamaCodec.classify), then the status."""
    return _classify_failure(failure, codec=wire.OllamaCodec())


def failure(
    status: int | None, body: object = b"", *, model: str = "llama2", exc: BaseException | None = None
) -> ProviderFailure:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ProviderFailure(
        "ollama", model, status, {"retry-after": "3"} if status == 429 else {}, raw, exc, wire=wire.WIRE
    )


NOT_PULLED = {"error": 'model "x" not found, try pulling it first'}

CASES = [
    # (status, body, expected class, text the message must contain)
    (404, NOT_PULLED, dsrs.InvalidRequestError, "ollama pull llama2"),
    (404, b"404 page not found", dsrs.InvalidRequestError, "is this an Ollama server"),
    (400, {"error": "missing request body"}, dsrs.InvalidRequestError, "missing request body"),
    (
        400,
        {"error": "invalid character '}' looking for beginning of value"},
        dsrs.InvalidRequestError,
        "invalid character",
    ),
    (401, {"error": "unauthorized"}, dsrs.AuthenticationError, "unauthorized"),
    (403, {"error": "forbidden"}, dsrs.PermissionDeniedError, "forbidden"),
    (429, {"error": "too many requests"}, dsrs.RateLimitError, "too many requests"),
    (500, {"error": "the model failed to generate a response"}, dsrs.ProviderUnavailableError, "failed to generate"),
    (502, {"error": "cloud model unreachable"}, dsrs.ProviderUnavailableError, "unreachable"),
    (503, b"", dsrs.ProviderUnavailableError, "server error 503"),
    (400, b"<html>bad gateway page</html>", dsrs.ResponseParseError, "HTML"),
    (
        None,
        {"error": "an error was encountered while running the model"},
        dsrs.ProviderUnavailableError,
        "while streaming",
    ),
]


@pytest.mark.parametrize(("status", "body", "cls", "text"), CASES)
def test_classification_table(status: int | None, body: object, cls: type[dsrs.LMError], text: str) -> None:
    err = classify_failure(failure(status, body))
    assert type(err) is cls, err
    assert text in str(err)
    assert err.provider == "ollama" and err.model == "llama2"


def test_rate_limit_keeps_retry_after() -> None:
    assert classify_failure(failure(429, {"error": "slow down"})).retry_after == 3.0


def test_not_pulled_carries_a_code() -> None:
    err = classify_failure(failure(404, NOT_PULLED, model="qwen3:8b"))
    assert err.code == "model_not_found" and "`ollama pull qwen3:8b`" in str(err)


def test_server_down_is_provider_unavailable_with_a_hint() -> None:
    err = classify_failure(failure(None, exc=ConnectError("connection refused")))
    assert isinstance(err, dsrs.ProviderUnavailableError) and "ollama serve" in str(err)


def test_other_transport_errors_fall_back_to_core() -> None:
    err = classify_failure(failure(None, exc=ReadError("reset")))
    assert isinstance(err, dsrs.ProviderUnavailableError)


def test_prompt_text_in_a_body_does_not_change_the_class() -> None:
    # The classification reads the status, never the text: a 400 echoing "429 rate limit" stays a 400.
    err = classify_failure(failure(400, {"error": "bad prompt: 429 rate limit exceeded, try pulling it first"}))
    assert type(err) is dsrs.InvalidRequestError


def test_no_hook_of_its_own_the_codec_classifies() -> None:
    from dsrs_ollama import _plugin

    assert not hasattr(_plugin, "dsrs_classify_error")
    other = ProviderFailure("openai", "gpt-4o", 404, {}, json.dumps(NOT_PULLED).encode(), wire="openai-chat")
    # Another wire's failure never meets the Ollama codec: no pull hint on an OpenAI 404.
    assert "ollama pull" not in str(_classify_failure(other))
