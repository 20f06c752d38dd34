"""Golden tests: the exact JSON body every provider sends, parameter by parameter.

Sans-IO (``encode_json``), plus one round trip per wire showing the server got those bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import dsrs
from dsrs import LMRequest, Message, ResponseFormat, Tool, ToolCall
from dsrs.errors import AuthenticationError, InvalidRequestError

from .conftest import SECRET

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = Tool("get_time", "Local time", {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]})


def body(lm: dsrs.LM, messages: Any = "hi", *, stream: bool = False, **kwargs: Any) -> dict[str, Any]:
    provider: Any = lm.provider()
    return provider.encode_json(lm.build_request(messages, **kwargs), stream=stream)  # type: ignore[no-any-return]


def openai(model: str, **kw: Any) -> dsrs.LM:
    return dsrs.LM(model, api_key=SECRET, **kw)


# --- OpenAI chat ------------------------------------------------------------------------------


def test_plain_chat_model_sends_max_tokens_temperature_seed_stop() -> None:
    lm = openai("gpt-4-turbo", temperature=0.7, max_tokens=4096, seed=42, stop=["\n\n", "END"])
    assert body(lm, [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]) == {
        "model": "gpt-4-turbo",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 0.7,
        "max_tokens": 4096,
        "seed": 42,
        "stop": ["\n\n", "END"],
    }


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "o1-2024-12-17"])
def test_reasoning_models_use_max_completion_tokens_and_drop_temperature(model: str) -> None:
    lm = openai(model, temperature=0.7, max_tokens=256, reasoning_effort="low")
    assert body(lm) == {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 256,
        "reasoning_effort": "low",
    }


def test_gpt5_chat_variant_is_not_a_reasoning_model() -> None:
    assert body(openai("gpt-5-chat-latest", temperature=0.2, max_tokens=8)) == {
        "model": "gpt-5-chat-latest",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "max_tokens": 8,
    }


def test_o1_mini_gets_system_instructions_as_a_user_turn() -> None:
    sent = body(openai("o1-mini"), [{"role": "system", "content": "rules"}, {"role": "user", "content": "q"}])
    assert sent["messages"] == [{"role": "user", "content": "rules"}, {"role": "user", "content": "q"}]


def test_json_schema_response_format_is_strict() -> None:
    sent = body(openai("gpt-4o"), response_format=ResponseFormat(name="reply", schema=SCHEMA))
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
    }
    plain = body(openai("gpt-4o"), response_format=ResponseFormat(type="json_object"))
    assert plain["response_format"] == {"type": "json_object"}


def test_tools_tool_choice_and_parallel_calls() -> None:
    sent = body(openai("gpt-4o", parallel_tool_calls=True), tools=[WEATHER, TIME], tool_choice="get_weather")
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": dict(WEATHER.parameters),
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "description": "Local time", "parameters": dict(TIME.parameters)},
        },
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is True
    assert body(openai("gpt-4o"), tools=[WEATHER], tool_choice="required")["tool_choice"] == "required"


def test_tool_results_round_trip_in_messages() -> None:
    history = [
        Message("user", "weather?"),
        Message("assistant", None, tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)),
        Message("tool", "sunny", tool_call_id="call_1"),
    ]
    assert body(openai("gpt-4o"), history)["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ]


def test_stream_asks_for_usage() -> None:
    sent = body(openai("gpt-4o-mini"), stream=True)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_unknown_option_is_a_clear_error_and_extra_body_is_verbatim() -> None:
    with pytest.raises(InvalidRequestError, match="'num_ctx' is not a parameter of the openai API"):
        body(openai("gpt-4o", num_ctx=8192))
    sent = body(openai("gpt-4o", extra_body={"logit_bias": {"50256": -100}, "x_custom": 1}))
    assert sent["x_custom"] == 1 and sent["logit_bias"] == {"50256": -100}


def test_missing_key_for_api_openai_com_fails_before_any_request() -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        body(dsrs.LM("gpt-4o"))


def test_org_and_project_headers_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-123")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_456")
    provider: Any = openai("gpt-4o").provider()
    http = provider.encode(dsrs.LM("gpt-4o").build_request("hi"))
    assert http.headers["openai-organization"] == "org-123"
    assert http.headers["openai-project"] == "proj_456"
    assert http.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(provider)


def test_server_receives_the_golden_bytes(server: Any) -> None:
    lm = dsrs.LM("openai:o3-mini", base_url=server.url, api_key=SECRET, max_tokens=64, seed=7)
    lm.call("ping", response_format=ResponseFormat(name="reply", schema=SCHEMA))
    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.json() == {
        "model": "o3-mini",
        "messages": [{"role": "user", "content": "ping"}],
        "max_completion_tokens": 64,
        "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}},
    }


# --- Responses API ----------------------------------------------------------------------------


def test_responses_body_maps_every_parameter() -> None:
    lm = dsrs.LM(
        "openai-responses:gpt-4.1", api_key=SECRET, temperature=0.3, max_tokens=128, seed=1, reasoning_effort=None
    )
    sent = body(
        lm,
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        response_format=ResponseFormat(name="reply", schema=SCHEMA),
        tools=[WEATHER],
        tool_choice="get_weather",
    )
    assert sent == {
        "model": "gpt-4.1",
        "instructions": "be brief",
        "input": [{"role": "user", "content": "hi"}],
        "max_output_tokens": 128,
        "temperature": 0.3,
        "text": {"format": {"type": "json_schema", "name": "reply", "schema": SCHEMA, "strict": True}},
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": dict(WEATHER.parameters),
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "store": False,
    }  # seed does not exist in the Responses API: not sent


def test_codex_models_go_to_responses_with_reasoning_and_history() -> None:
    lm = openai("codex-mini-latest", temperature=0.5, max_tokens=32, reasoning_effort="high")
    history = [
        Message("developer", "rules"),
        Message("user", "weather?"),
        Message("assistant", None, tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)),
        Message("tool", "sunny", tool_call_id="call_1"),
    ]
    provider: Any = lm.provider()
    sent = provider.encode_json(lm.build_request(history), stream=True)  # one provider, two codecs
    assert sent == {
        "model": "codex-mini-latest",
        "instructions": "rules",
        "input": [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        "max_output_tokens": 32,
        "reasoning": {"effort": "high"},
        "store": False,
        "stream": True,
    }


def test_responses_rejects_stop_and_unknown_options() -> None:
    with pytest.raises(InvalidRequestError, match="no 'stop' parameter"):
        body(dsrs.LM("openai-responses:gpt-4o", api_key=SECRET, stop=["x"]))
    with pytest.raises(InvalidRequestError, match="'frequency_penalty'"):
        body(dsrs.LM("openai-responses:gpt-4o", api_key=SECRET, frequency_penalty=0.5))


def test_responses_round_trip_bytes(server: Any) -> None:
    lm = dsrs.LM("codex-mini-latest", base_url=server.url, api_key=SECRET)
    lm.call("ping")
    (req,) = server.requests
    assert req.path == "/v1/responses"
    assert req.json() == {"model": "codex-mini-latest", "input": [{"role": "user", "content": "ping"}], "store": False}
    assert req.headers["authorization"] == f"Bearer {SECRET}"


# --- vendors ----------------------------------------------------------------------------------


def test_groq_uses_max_completion_tokens_and_drops_message_names() -> None:
    lm = dsrs.LM("groq/mixtral-8x7b", api_key=SECRET, max_tokens=32768, temperature=0.1)
    sent = body(lm, [{"role": "user", "content": "hi", "name": "alice"}], stream=True)
    assert sent == {
        "model": "mixtral-8x7b",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.1,
        "max_completion_tokens": 32768,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_cerebras_body() -> None:
    sent = body(
        dsrs.LM("cerebras:llama3.1-8b", api_key=SECRET, max_tokens=10, seed=3),
        response_format=ResponseFormat(schema=SCHEMA),
    )
    assert sent == {
        "model": "llama3.1-8b",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 10,
        "seed": 3,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": SCHEMA, "strict": True},
        },
    }


def test_mistral_renames_seed_and_required_and_skips_stream_options() -> None:
    sent = body(
        dsrs.LM("mistral:mistral-small-latest", api_key=SECRET, seed=9, max_tokens=5),
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
    )
    assert sent["random_seed"] == 9 and "seed" not in sent
    assert sent["tool_choice"] == "any"
    assert sent["max_tokens"] == 5
    assert "stream_options" not in sent and sent["stream"] is True


def test_deepseek_reasoner_takes_no_temperature() -> None:
    assert "temperature" not in body(dsrs.LM("deepseek:deepseek-reasoner", api_key=SECRET, temperature=0.5))
    assert body(dsrs.LM("deepseek:deepseek-chat", api_key=SECRET, temperature=0.5))["temperature"] == 0.5


def test_openrouter_asks_for_usage_accounting() -> None:
    sent = body(dsrs.LM("openrouter/anthropic/claude-3.5-sonnet", api_key=SECRET, provider={"order": ["Anthropic"]}))
    assert sent == {
        "model": "anthropic/claude-3.5-sonnet",
        "messages": [{"role": "user", "content": "hi"}],
        "provider": {"order": ["Anthropic"]},
        "usage": {"include": True},
    }


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("groq", "https://api.groq.com/openai/v1/chat/completions"),
        ("cerebras", "https://api.cerebras.ai/v1/chat/completions"),
        ("openrouter", "https://openrouter.ai/api/v1/chat/completions"),
        ("together", "https://api.together.xyz/v1/chat/completions"),
        ("deepseek", "https://api.deepseek.com/v1/chat/completions"),
        ("xai", "https://api.x.ai/v1/chat/completions"),
        ("mistral", "https://api.mistral.ai/v1/chat/completions"),
    ],
)
def test_vendor_urls_keys_and_base_url_override(name: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lm = dsrs.LM(f"{name}:some-model")
    with pytest.raises(AuthenticationError, match=f"{name.upper()}_API_KEY"):
        body(lm)
    monkeypatch.setenv(f"{name.upper()}_API_KEY", SECRET)
    provider: Any = dsrs.LM(f"{name}:some-model").provider()
    assert provider.url == url
    assert (
        provider.encode(dsrs.LM(f"{name}:some-model").build_request("hi")).headers["authorization"]
        == f"Bearer {SECRET}"
    )
    monkeypatch.setenv(f"{name.upper()}_BASE_URL", "http://127.0.0.1:9/v1")
    assert dsrs.LM(f"{name}:some-model").provider().url == "http://127.0.0.1:9/v1/chat/completions"  # type: ignore[attr-defined]


def test_request_json_is_compact_utf8() -> None:
    provider: Any = openai("gpt-4o").provider()
    http = provider.encode(LMRequest("openai", "gpt-4o", (Message("user", "héllo"),)))
    assert json.loads(http.content) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "héllo"}]}
    assert "héllo".encode() in http.content


def test_no_key_needed_off_api_openai_com(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    r = dsrs.LM("gpt-4o-mini").call("local proxy")
    assert r.text == "local proxy"
    assert "authorization" not in server.requests[-1].headers
