"""The Gemini codec, sans-IO: golden request bodies, URLs, response and SSE stream decoding.

Shapes from the Gemini API reference, ai.google.dev/api/generate-content (GenerateContentRequest,
GenerationConfig, ThinkingConfig, Tool/FunctionDeclaration, ToolConfig, GenerateContentResponse,
UsageMetadata), and the function-calling guide (ai.google.dev/gemini-api/docs/function-calling).
"""

from __future__ import annotations

import json

import pytest

import dsrs
from dsrs import LMRequest, Message, ResponseFormat, Tool, ToolCall
from dsrs_google import wire


def req(**kw: object) -> LMRequest:
    base: dict[str, object] = {"provider": "google", "model": "gemini-2.5-flash", "messages": (Message("user", "Hi"),)}
    base.update(kw)
    return LMRequest(**base)  # type: ignore[arg-type]


WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


# --- golden request bodies ------------------------------------------------------------------


def test_minimal_body() -> None:
    assert wire.encode_body(req()) == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_system_instruction_and_roles() -> None:
    messages = (
        Message("system", "You are a cat."),
        Message("developer", "Answer in French."),
        Message("user", "Hello"),
        Message("assistant", "Miaou"),
        Message("user", "Again"),
    )
    assert wire.encode_body(req(messages=messages)) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Miaou"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You are a cat."}, {"text": "Answer in French."}]},
    }


def test_generation_config_maps_every_parameter() -> None:
    r = req(
        temperature=0.3,
        max_tokens=256,
        seed=42,
        stop=("END", "STOP"),
        options={
            "top_p": 0.9,
            "top_k": 40,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "thinking_budget": 1024,
            "include_thoughts": True,
        },
    )
    assert wire.encode_body(r)["generationConfig"] == {
        "temperature": 0.3,
        "maxOutputTokens": 256,
        "seed": 42,
        "stopSequences": ["END", "STOP"],
        "topP": 0.9,
        "topK": 40,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    }


def test_thinking_level_and_raw_generation_config() -> None:
    r = req(options={"thinking_level": "low", "generation_config": {"responseModalities": ["TEXT"]}})
    assert wire.encode_body(r)["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "low"},
        "responseModalities": ["TEXT"],
    }


def test_safety_settings_and_cached_content_are_top_level() -> None:
    settings = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    body = wire.encode_body(req(options={"safety_settings": settings, "cached_content": "cachedContents/abc"}))
    assert body["safetySettings"] == settings and body["cachedContent"] == "cachedContents/abc"


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="num_ctx"):
        wire.encode_body(req(options={"num_ctx": 8192}))


def test_structured_output_json_schema_mode() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    config = wire.encode_body(req(response_format=ResponseFormat(schema=schema)))["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_structured_output_openapi_mode_for_older_models() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    for model in ("gemini-pro", "gemini-1.5-flash", "gemini-2.0-flash-001"):
        config = wire.encode_body(req(model=model, response_format=ResponseFormat(schema=schema)))["generationConfig"]
        assert config == {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"answer": {"type": "STRING"}},
                "propertyOrdering": ["answer"],
                "required": ["answer"],
            },
        }, model
    forced = wire.encode_body(req(options={"schema_mode": "openapi"}, response_format=ResponseFormat(schema=schema)))
    assert "responseSchema" in forced["generationConfig"]


def test_json_object_mode_has_no_schema() -> None:
    config = wire.encode_body(req(response_format=ResponseFormat(type="json_object")))["generationConfig"]
    assert config == {"responseMimeType": "application/json"}


def test_unsupported_schema_keyword_is_a_clear_error() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "allOf": [{"required": ["a"]}]}
    with pytest.raises(dsrs.InvalidRequestError, match="allOf"):
        wire.encode_body(req(response_format=ResponseFormat(schema=schema)))


def test_function_declarations_and_tool_choice() -> None:
    ping = Tool("ping", "no arguments")
    body = wire.encode_body(req(tools=(WEATHER, ping), tool_choice="get_weather"))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                {"name": "ping", "description": "no arguments"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    for choice, mode in (("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")):
        assert wire.encode_body(req(tools=(WEATHER,), tool_choice=choice))["toolConfig"] == {
            "functionCallingConfig": {"mode": mode}
        }


def test_function_declarations_openapi_mode() -> None:
    body = wire.encode_body(req(model="gemini-1.5-flash", tools=(WEATHER,)))
    assert body["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "propertyOrdering": ["city"],
        "required": ["city"],
    }


def test_tool_calls_and_parallel_results() -> None:
    calls = (
        ToolCall("c1", "get_weather", '{"city": "Paris"}'),
        ToolCall("c2", "get_weather", '{"city": "Oslo"}'),
    )
    messages = (
        Message("user", "Weather in Paris and Oslo?"),
        Message(
            "assistant",
            None,
            tool_calls=calls,
            provider_state={"gemini": {"thought_signatures": {"c1": "sig-abc"}, "call_ids": ["c2"]}},
        ),
        Message("tool", '{"temp": 21}', tool_call_id="c1"),
        Message("tool", "cold", tool_call_id="c2"),
    )
    body = wire.encode_body(req(messages=messages, tools=(WEATHER,)))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Oslo?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-abc"},
                {"functionCall": {"id": "c2", "name": "get_weather", "args": {"city": "Oslo"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"id": "c2", "name": "get_weather", "response": {"result": "cold"}}},
            ],
        },
    ]


def test_tool_result_without_a_name_is_a_clear_error() -> None:
    messages = (Message("user", "x"), Message("tool", "42", tool_call_id="unknown"))
    with pytest.raises(dsrs.InvalidRequestError, match="function name"):
        wire.encode_body(req(messages=messages))


def test_only_a_system_message_is_a_clear_error() -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="at least one user"):
        wire.encode_body(req(messages=(Message("system", "x"),)))


# --- URLs -------------------------------------------------------------------------------------


def test_urls() -> None:
    base = wire.normalize_base_url("https://generativelanguage.googleapis.com")
    assert base == "https://generativelanguage.googleapis.com/v1beta"
    assert wire.normalize_base_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1"
    assert wire.generate_url(base, "gemini-2.5-flash") == f"{base}/models/gemini-2.5-flash:generateContent"
    assert (
        wire.generate_url(base, "models/gemini-pro", stream=True)
        == f"{base}/models/gemini-pro:streamGenerateContent?alt=sse"
    )
    assert wire.generate_url(base, "tunedModels/my-model-1") == f"{base}/tunedModels/my-model-1:generateContent"
    assert wire.models_url(base) == f"{base}/models?pageSize=1"


# --- responses --------------------------------------------------------------------------------

# The reference's GenerateContentResponse, with every UsageMetadata count.
RESPONSE = {
    "candidates": [
        {
            "content": {
                "parts": [{"text": "I should greet back.", "thought": True}, {"text": "Hello! How can I help?"}],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 120,
        "candidatesTokenCount": 7,
        "totalTokenCount": 182,
        "cachedContentTokenCount": 100,
        "thoughtsTokenCount": 50,
        "toolUsePromptTokenCount": 5,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}],
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mAitaJvVJb2A1MkP2JvR8Ag",
}


def test_decode_text_thoughts_and_usage() -> None:
    r = wire.decode_response(200, json.dumps(RESPONSE).encode(), model="gemini-2.5-flash")
    assert r.text == "Hello! How can I help?" and r.reasoning == "I should greet back."
    assert r.finish_reason == "stop"
    u = r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (125, 57, 182)
    assert (u.cached_tokens, u.reasoning_tokens) == (100, 50)
    assert r.raw_usage == RESPONSE["usageMetadata"]


def test_decode_parallel_function_calls_with_signature() -> None:
    # function-calling guide: parallel calls come back as several functionCall parts of one candidate.
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "power_disco_ball", "args": {"power": True}},
                            "thoughtSignature": "c2ln",
                        },
                        {"functionCall": {"name": "start_music", "args": {"energetic": True, "loud": True}}},
                        {"functionCall": {"name": "dim_lights", "args": {"brightness": 0.5}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20, "totalTokenCount": 30},
    }
    r = wire.decode_response(200, json.dumps(body).encode())
    assert [c.name for c in r.tool_calls] == ["power_disco_ball", "start_music", "dim_lights"]
    assert r.tool_calls[1].parsed_arguments() == {"energetic": True, "loud": True}
    assert len({c.id for c in r.tool_calls}) == 3
    assert r.finish_reason == "tool_calls"
    assert r.provider_state == {"gemini": {"thought_signatures": {r.tool_calls[0].id: "c2ln"}}}
    assert r.message().provider_state == r.provider_state  # travels into the next turn


def test_max_tokens_finish_is_length() -> None:
    body = dict(
        RESPONSE, candidates=[{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "finishReason": "MAX_TOKENS"}]
    )
    assert wire.decode_response(200, json.dumps(body).encode()).finish_reason == "length"


def test_prompt_blocked_is_content_filter() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "usageMetadata": {"promptTokenCount": 9}}
    with pytest.raises(dsrs.ContentFilterError, match="blockReason SAFETY") as info:
        wire.decode_response(200, json.dumps(body).encode())
    assert info.value.code == "SAFETY"


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"])
def test_withheld_answer_is_content_filter(reason: str) -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason}]}
    with pytest.raises(dsrs.ContentFilterError, match=reason):
        wire.decode_response(200, json.dumps(body).encode())


@pytest.mark.parametrize(
    "body",
    [b"<!DOCTYPE html><html>502</html>", b"not json", b"[]", b'{"candidates": []}', b'{"usageMetadata": {}}'],
)
def test_malformed_bodies_are_parse_errors(body: bytes) -> None:
    with pytest.raises(dsrs.ResponseParseError):
        wire.decode_response(200, body)


# --- SSE stream -------------------------------------------------------------------------------

# streamGenerateContent?alt=sse events as the API sends them (e.g. the adk-go recorded trace
# TestModel_GenerateStream_ok.httprr): each a whole GenerateContentResponse, usage cumulative,
# finishReason on the last one.
EVENTS = [
    {
        "candidates": [{"content": {"parts": [{"text": "Paris"}], "role": "model"}}],
        "usageMetadata": {"promptTokenCount": 11, "totalTokenCount": 11},
        "modelVersion": "gemini-2.0-flash",
    },
    {
        "candidates": [{"content": {"parts": [{"text": ".\n"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 2, "totalTokenCount": 13},
        "modelVersion": "gemini-2.0-flash",
    },
]


def test_stream_decoder() -> None:
    dec = wire.GeminiStreamDecoder(model="gemini-2.0-flash")
    deltas = [c.text for e in EVENTS if (c := dec.feed(json.dumps(e))) is not None]
    assert deltas == ["Paris", ".\n"]
    r = dec.finish()
    assert r.text == "Paris.\n" and r.finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (11, 2, 13)


def test_stream_cut_short_is_parse_error() -> None:
    dec = wire.GeminiStreamDecoder()
    dec.feed(json.dumps(EVENTS[0]))
    with pytest.raises(dsrs.ResponseParseError, match="cut short"):
        dec.finish()


def test_stream_error_event_is_classified() -> None:
    dec = wire.GeminiStreamDecoder(model="gemini-2.5-pro")
    dec.feed(json.dumps(EVENTS[0]))
    event = {
        "error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
    }
    with pytest.raises(dsrs.ProviderUnavailableError, match="overloaded"):
        dec.feed(json.dumps(event))


def test_stream_safety_stop() -> None:
    dec = wire.GeminiStreamDecoder()
    dec.feed(json.dumps(EVENTS[0]))
    with pytest.raises(dsrs.ContentFilterError):
        dec.feed(json.dumps({"candidates": [{"content": {"parts": [], "role": "model"}, "finishReason": "SAFETY"}]}))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("thinking_budget", "high"),
        ("thinking_budget", True),
        ("include_thoughts", "yes"),
        ("top_p", "0.9"),
        ("generation_config", ["x"]),
        ("safety_settings", "BLOCK_NONE"),
    ],
)
def test_badly_typed_options_are_clear_errors(option: str, value: object) -> None:
    with pytest.raises(dsrs.InvalidRequestError, match=f"option {option}="):
        wire.encode_body(req(options={option: value}))
