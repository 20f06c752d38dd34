"""The sans-IO OpenAI chat codec: golden request bodies, responses, streams and error tables."""

from __future__ import annotations

import json

import pytest

import dsrs
from dsrs.plugins._types import ProviderFailure
from dsrs.types import LMRequest, Message, ResponseFormat, Tool, ToolCall
from dsrs.wire import openai_chat
from dsrs.wire.openai_chat import WireOptions


def _req(**kw: object) -> LMRequest:
    base: dict[str, object] = {"provider": "p", "model": "m", "messages": (Message("user", "hi"),)}
    base.update(kw)
    return LMRequest(**base)  # type: ignore[arg-type]


def test_golden_minimal_body() -> None:
    assert openai_chat.encode_body(_req()) == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_golden_full_body() -> None:
    req = _req(
        messages=(
            Message("system", "sys"),
            Message("user", "q"),
            Message("assistant", None, tool_calls=(ToolCall("c1", "f", '{"a":1}'),)),
            Message("tool", "42", tool_call_id="c1"),
        ),
        temperature=0.3,
        max_tokens=100,
        seed=7,
        stop=("END",),
        response_format=ResponseFormat(name="out", schema={"type": "object"}),
        tools=(Tool("f", "does f", {"type": "object", "properties": {"a": {"type": "integer"}}}),),
        tool_choice="f",
        options={"top_p": 0.5},
    )
    assert openai_chat.encode_body(req, stream=True) == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
        ],
        "temperature": 0.3,
        "max_tokens": 100,
        "seed": 7,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
        },
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "does f",
                    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "top_p": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_quirks_reasoning_model_mapping() -> None:
    opts = WireOptions(
        max_tokens_field="max_completion_tokens",
        send_temperature=False,
        passthrough_options=frozenset({"reasoning_effort"}),
    )
    body = openai_chat.encode_body(
        _req(temperature=0.2, max_tokens=50, options={"reasoning_effort": "low", "num_ctx": 9}), options=opts
    )
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "reasoning_effort": "low",
    }


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://localhost:8000", "http://localhost:8000/v1/chat/completions"),
        ("http://localhost:8000/", "http://localhost:8000/v1/chat/completions"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.groq.com/openai/v1/", "https://api.groq.com/openai/v1/chat/completions"),
    ],
)
def test_chat_url(base: str, url: str) -> None:
    assert openai_chat.chat_url(base) == url


def test_decode_response_with_tool_calls_usage_and_reasoning() -> None:
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "m-2024",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "reasoning_content": "thinking...",
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
                            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                        ],
                    },
                }
            ],
            "usage": {
                "prompt_tokens": 20,
                "completion_tokens": 10,
                "total_tokens": 30,
                "prompt_tokens_details": {"cached_tokens": 8},
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
        }
    ).encode()
    r = openai_chat.decode_response(200, {}, body, provider="p", model="m")
    assert [tc.name for tc in r.tool_calls] == ["f", "g"]  # every parallel call is returned
    assert r.reasoning == "thinking..." and r.text == "" and r.finish_reason == "tool_calls"
    assert (r.usage.prompt_tokens, r.usage.cached_tokens, r.usage.reasoning_tokens, r.usage.total_tokens) == (
        20,
        8,
        4,
        30,
    )
    assert r.usage.cost_msats is None  # priced later by dsrs_cost
    assert r.raw_usage is not None and r.raw_usage["total_tokens"] == 30 and r.model == "m-2024"


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"choices": [', b"[]", b'{"choices": []}'])
def test_malformed_bodies_are_parse_errors(body: bytes) -> None:
    with pytest.raises(dsrs.ResponseParseError):
        openai_chat.decode_response(200, {}, body, provider="p", model="m")


def test_stream_decoder_assembles_text_tools_and_usage() -> None:
    d = openai_chat.ChatStreamDecoder(provider="p", model="m")
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f", "arguments": '{"a"'}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 1, "id": "t2", "function": {"name": "g", "arguments": "{}"}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}},
    ]
    texts = [c.text for e in events if (c := d.feed(json.dumps(e))) is not None]
    d.feed("[DONE]")
    r = d.finish()
    assert texts == ["Hel", "lo"] and r.text == "Hello"
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [("t1", "f", '{"a":1}'), ("t2", "g", "{}")]
    assert r.usage.total_tokens == 8 and r.finish_reason == "tool_calls"


def test_stream_cut_short_is_a_parse_error() -> None:
    d = openai_chat.ChatStreamDecoder(provider="p", model="m")
    d.feed(json.dumps({"choices": [{"index": 0, "delta": {"content": "partial"}}]}))
    with pytest.raises(dsrs.ResponseParseError, match="before the answer was complete"):
        d.finish()


def _fail(status: int, body: object, headers: dict[str, str] | None = None) -> ProviderFailure:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return ProviderFailure("p", "m", status, headers or {}, raw, wire="openai-chat")


# Error bodies as documented in the OpenAI API reference ("Error codes" guide).
@pytest.mark.parametrize(
    ("failure", "cls", "retry_after"),
    [
        (
            _fail(
                429,
                {
                    "error": {
                        "message": "You exceeded your current quota, please check your plan and billing details.",
                        "type": "insufficient_quota",
                        "param": None,
                        "code": "insufficient_quota",
                    }
                },
            ),
            dsrs.QuotaExceededError,
            None,
        ),
        (
            _fail(
                429,
                {
                    "error": {
                        "message": "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3.",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
                {"retry-after": "20"},
            ),
            dsrs.RateLimitError,
            20.0,
        ),
        (
            _fail(
                429,
                {"error": {"message": "slow", "type": "tokens", "code": "rate_limit_exceeded"}},
                {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"},
            ),
            dsrs.RateLimitError,
            360.0,
        ),
        (_fail(429, {"error": {"message": "slow"}}, {"retry-after-ms": "250"}), dsrs.RateLimitError, 0.25),
        (
            _fail(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided: sk-abc***xyz.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            ),
            dsrs.AuthenticationError,
            None,
        ),
        (
            _fail(
                403,
                {
                    "error": {
                        "message": "Country, region, or territory not supported",
                        "type": "request_forbidden",
                        "code": "unsupported_country_region_territory",
                    }
                },
            ),
            dsrs.PermissionDeniedError,
            None,
        ),
        (
            _fail(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 8192 tokens.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
            ),
            dsrs.ContextWindowExceededError,
            None,
        ),
        (
            _fail(
                400,
                {
                    "error": {
                        "message": "Your request was rejected as a result of our safety system.",
                        "type": "invalid_request_error",
                        "code": "content_policy_violation",
                    }
                },
            ),
            dsrs.ContentFilterError,
            None,
        ),
        (
            _fail(
                404,
                {
                    "error": {
                        "message": "The model `gpt-9` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                },
            ),
            dsrs.InvalidRequestError,
            None,
        ),
        (
            _fail(
                500,
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                    }
                },
            ),
            dsrs.ProviderUnavailableError,
            None,
        ),
        (
            _fail(
                503,
                {
                    "error": {
                        "message": "The engine is currently overloaded, please try again later.",
                        "type": "server_error",
                    }
                },
            ),
            dsrs.ProviderUnavailableError,
            None,
        ),
        (_fail(502, "<html><body>502 Bad Gateway</body></html>"), dsrs.ProviderUnavailableError, None),
        (_fail(400, "<html>proxy says no</html>"), dsrs.ResponseParseError, None),
    ],
)
def test_error_classification_table(
    failure: ProviderFailure, cls: type[dsrs.LMError], retry_after: float | None
) -> None:
    err = openai_chat.classify(failure)
    assert type(err) is cls
    assert err is not None and err.retry_after == retry_after and err.status == failure.status


def test_prompt_echo_containing_429_is_not_a_rate_limit() -> None:
    # A 400 whose message echoes a prompt mentioning "429" and "rate limit" stays an invalid request.
    f = _fail(
        400,
        {
            "error": {
                "message": "Invalid 'messages': 'why do I get 429 rate limit errors?'",
                "type": "invalid_request_error",
            }
        },
    )
    assert type(openai_chat.classify(f)) is dsrs.InvalidRequestError


def test_model_named_in_not_found() -> None:
    err = openai_chat.classify(_fail(404, {"error": {"message": "no such model", "code": "model_not_found"}}))
    assert err is not None and "'m'" in str(err)


# --- real response shapes (bodies from the vendors' documentation) ---------------------------

# docs.mistral.ai "Reasoning" (magistral-medium-latest): content is a list of a thinking chunk
# (whose ``thinking`` is itself a list of text chunks) and a text chunk.
MISTRAL_REASONING = {
    "id": "9a3d0b7c",
    "object": "chat.completion",
    "model": "magistral-medium-latest",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "tool_calls": None,
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "Let me count: 2 + 2 is 4."}]},
                    {"type": "text", "text": "The answer is 4."},
                ],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "total_tokens": 40, "completion_tokens": 28},
}


def test_mistral_content_chunks_split_text_and_reasoning() -> None:
    r = openai_chat.decode_response(200, {}, json.dumps(MISTRAL_REASONING).encode(), provider="mistral", model="m")
    assert r.text == "The answer is 4." and isinstance(r.text, str)
    assert r.reasoning == "Let me count: 2 + 2 is 4."
    assert r.usage.total_tokens == 40


def test_mistral_streamed_content_chunks_are_deltas_of_text_and_reasoning() -> None:
    d = openai_chat.ChatStreamDecoder(provider="mistral", model="m")
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Let me"}]}]},
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": " count."}]}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "It is "}]}}]},
        {"choices": [{"index": 0, "delta": {"content": "4."}, "finish_reason": "stop"}]},
    ]
    chunks = [c for e in events if (c := d.feed(json.dumps(e))) is not None]
    assert [(c.text, c.reasoning) for c in chunks] == [("", "Let me"), ("", " count."), ("It is ", ""), ("4.", "")]
    r = d.finish()
    assert (r.text, r.reasoning) == ("It is 4.", "Let me count.")


# openrouter.ai/docs "Errors" > "Error during streaming": the last chunk carries the error object
# next to choices whose finish_reason is "error".
OPENROUTER_STREAM_ERROR = {
    "id": "cmpl-abc123",
    "object": "chat.completion.chunk",
    "created": 1234567890,
    "model": "openai/gpt-3.5-turbo",
    "provider": "openai",
    "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
}


def test_error_chunk_with_choices_is_a_typed_error_not_an_empty_success() -> None:
    d = openai_chat.ChatStreamDecoder(provider="openrouter", model="m")
    d.feed(json.dumps({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}))
    with pytest.raises(dsrs.ProviderUnavailableError, match="Provider disconnected"):
        d.feed(json.dumps(OPENROUTER_STREAM_ERROR))


def test_error_next_to_choices_in_a_2xx_body_is_a_typed_error() -> None:
    body = {**OPENROUTER_STREAM_ERROR, "error": {"code": 402, "message": "Insufficient credits"}}
    with pytest.raises(dsrs.QuotaExceededError):
        openai_chat.decode_response(200, {}, json.dumps(body).encode(), provider="openrouter", model="m")


def _choice(message: object, **extra: object) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], **extra}).encode()


@pytest.mark.parametrize(
    "body",
    [
        _choice("just a string"),
        _choice(["a", "list"]),
        _choice({"content": {"text": "an object where text belongs"}}),
        _choice({"content": 42}),
        _choice({"content": "ok", "tool_calls": "not a list"}),
        _choice({"content": "ok", "tool_calls": [1, 2]}),
        _choice({"content": "ok", "tool_calls": [{"function": "f"}]}),
        _choice({"content": "ok", "tool_calls": [{"function": {"arguments": "{}"}}]}),
        _choice({"content": "ok"}, usage="lots"),
        _choice({"content": "ok"}, usage={"prompt_tokens": "ten"}),
        _choice({"content": [{"type": "text", "text": 5}]}),
        _choice({"content": [{"type": "thinking", "thinking": 5}, {"type": "text", "text": "x"}]}),
    ],
)
def test_wrong_types_in_a_2xx_body_are_parse_errors(body: bytes) -> None:
    with pytest.raises(dsrs.ResponseParseError, match="unexpected chat completion shape"):
        openai_chat.decode_response(200, {}, body, provider="p", model="m")


@pytest.mark.parametrize(
    "event",
    [
        {"choices": [{"index": 0, "delta": "text"}]},
        {"choices": "nope"},
        {"choices": [{"index": 0, "delta": {"content": {"text": "obj"}}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": {"index": 0}}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 1}}]}}]},
        {"choices": [], "usage": ["x"]},
    ],
)
def test_wrong_types_in_a_stream_chunk_are_parse_errors(event: object) -> None:
    d = openai_chat.ChatStreamDecoder(provider="p", model="m")
    with pytest.raises(dsrs.ResponseParseError, match="unexpected stream chunk shape"):
        d.feed(json.dumps(event))


def test_null_content_with_tool_calls_is_an_empty_str() -> None:
    body = _choice({"content": None, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]})
    r = openai_chat.decode_response(200, {}, body, provider="p", model="m")
    assert r.text == "" and r.tool_calls[0].name == "f"


def test_tool_strict_is_sent_from_the_tool() -> None:
    t = Tool("f", "", {"type": "object", "properties": {}})
    strict_tool = Tool("g", "", {"type": "object", "properties": {}}, strict=True)  # type: ignore[call-arg]
    loose_tool = Tool("h", "", {"type": "object", "properties": {}}, strict=False)  # type: ignore[call-arg]
    tools = openai_chat.encode_body(_req(tools=(t, strict_tool, loose_tool)))["tools"]
    assert "strict" not in tools[0]["function"]
    assert tools[1]["function"]["strict"] is True and tools[2]["function"]["strict"] is False


def test_a_key_echoed_into_a_2xx_body_or_chunk_is_masked_by_the_codec() -> None:
    from dsrs.transport import HttpResponse

    key = "hunter2-not-shaped-like-a-key"
    codec = openai_chat.OpenAIChatCodec(secrets=(key,))
    body = json.dumps({"error": {"message": f"bad key {key}"}, "choices": []}).encode()
    with pytest.raises(dsrs.LMError) as info:
        codec.decode(_req(), HttpResponse(200, {}, body))
    with pytest.raises(dsrs.LMError) as streamed:
        codec.stream_decoder(_req()).feed(body.decode())
    for err in (info.value, streamed.value):
        assert key not in str(err) and key not in repr(err) and key not in (err.body or "") and key not in str(err.args)
