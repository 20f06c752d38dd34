"""The Ollama codec, sans-IO: golden request bodies, host parsing, response and stream decoding.

Response bodies are the examples of Ollama's docs/api.md ("Generate a chat completion":
"Chat request (No streaming)", "Chat Request (Streaming)", "Chat request (with tools)").
"""

from __future__ import annotations

import json

import pytest

import dsrs
from dsrs import LMRequest, Message, ResponseFormat, Tool, ToolCall
from dsrs_ollama import wire


def req(**kw: object) -> LMRequest:
    base: dict[str, object] = {
        "provider": "ollama",
        "model": "llama2",
        "messages": (Message("user", "why is the sky blue?"),),
    }
    base.update(kw)
    return LMRequest(**base)  # type: ignore[arg-type]


# --- golden request bodies ------------------------------------------------------------------


def test_minimal_body_disables_streaming_explicitly() -> None:
    # Ollama streams unless told "stream": false, so the non-streamed body must say it.
    assert wire.encode_body(req()) == {
        "model": "llama2",
        "messages": [{"role": "user", "content": "why is the sky blue?"}],
        "stream": False,
    }


def test_every_parameter_lands_in_options() -> None:
    body = wire.encode_body(
        req(temperature=0.2, max_tokens=64, seed=101, stop=("\n", "user:"), options={"num_ctx": 8192, "top_k": 20}),
        stream=True,
    )
    assert body == {
        "model": "llama2",
        "messages": [{"role": "user", "content": "why is the sky blue?"}],
        "stream": True,
        "options": {
            "temperature": 0.2,
            "num_predict": 64,
            "seed": 101,
            "stop": ["\n", "user:"],
            "num_ctx": 8192,
            "top_k": 20,
        },
    }


def test_top_level_fields_and_nested_options() -> None:
    body = wire.encode_body(req(options={"keep_alive": "10m", "think": True, "options": {"num_gpu": 1}}))
    assert body["keep_alive"] == "10m" and body["think"] is True
    assert body["options"] == {"num_gpu": 1}


def test_with_num_ctx_reaches_options_num_ctx() -> None:
    lm = dsrs.LM("ollama/llama2").with_num_ctx(8192).with_max_tokens(100)
    body = wire.encode_body(lm.build_request("hi"))
    assert body["options"] == {"num_predict": 100, "num_ctx": 8192}


def test_format_json_schema_and_json_mode() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    assert wire.encode_body(req(response_format=ResponseFormat(schema=schema)))["format"] == schema
    assert wire.encode_body(req(response_format=ResponseFormat(type="json_object")))["format"] == "json"


def test_messages_roles_tools_and_tool_results() -> None:
    call = ToolCall(id="call_1", name="get_current_weather", arguments='{"location": "Paris, FR"}')
    messages = (
        Message("system", "be brief"),
        Message("developer", "use celsius"),
        Message("user", "What is the weather today in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"temp": 21}', tool_call_id="call_1"),
    )
    tool = Tool(
        "get_current_weather",
        "Get the current weather",
        {"type": "object", "properties": {"location": {"type": "string"}}},
    )
    body = wire.encode_body(req(messages=messages, tools=(tool,)))
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "system", "content": "use celsius"},
        {"role": "user", "content": "What is the weather today in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_current_weather", "arguments": {"location": "Paris, FR"}}}],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_current_weather"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]


def test_tool_call_with_non_json_arguments_is_a_clear_error() -> None:
    bad = Message("assistant", "", tool_calls=(ToolCall(id="c", name="f", arguments="{not json"),))
    with pytest.raises(dsrs.InvalidRequestError, match="not JSON"):
        wire.encode_body(req(messages=(Message("user", "x"), bad)))


# --- host parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "http://localhost:11434"),
        ("", "http://localhost:11434"),
        ("localhost", "http://localhost:11434"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("http://gpu-box:11434", "http://gpu-box:11434"),
        ("http://gpu-box", "http://gpu-box"),
        ("https://ollama.example.com", "https://ollama.example.com"),
        ("https://example.com/ollama/", "https://example.com/ollama"),
        ("http://localhost:11434/api", "http://localhost:11434"),
        ("[::1]:11434", "http://[::1]:11434"),
    ],
)
def test_parse_host(value: str | None, expected: str) -> None:
    assert wire.parse_host(value) == expected


@pytest.mark.parametrize("value", ["ftp://host", "host:notaport"])
def test_parse_host_rejects_nonsense(value: str) -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="OLLAMA_HOST"):
        wire.parse_host(value)


# --- responses --------------------------------------------------------------------------------

# docs/api.md, "Chat request (No streaming)", response.
NO_STREAM = {
    "model": "llama3.2",
    "created_at": "2023-12-12T14:13:43.416799Z",
    "message": {"role": "assistant", "content": "Hello! How are you today?"},
    "done": True,
    "total_duration": 5191566416,
    "load_duration": 2154458,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000,
    "eval_count": 298,
    "eval_duration": 4799921000,
}


def test_decode_documented_answer() -> None:
    r = wire.decode_response(200, json.dumps(NO_STREAM).encode(), model="llama3.2")
    assert r.text == "Hello! How are you today?"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (26, 298, 324)
    assert r.usage.detail["total_duration"] == 5191566416
    assert r.usage.detail["eval_duration"] == 4799921000
    assert r.usage.detail["tokens_per_second"] == pytest.approx(298 / 4.799921, rel=1e-3)
    assert r.raw_usage is not None and r.raw_usage["prompt_eval_count"] == 26
    assert r.model == "llama3.2"


def test_missing_prompt_eval_count_means_prompt_was_cached() -> None:
    body = {k: v for k, v in NO_STREAM.items() if k != "prompt_eval_count"}
    assert wire.decode_response(200, json.dumps(body).encode()).usage.prompt_tokens == 0


def test_decode_documented_tool_call() -> None:
    # docs/api.md, "Chat request (with tools)", response.
    body = {
        "model": "llama3.2",
        "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "function": {
                        "name": "get_current_weather",
                        "arguments": {"format": "celsius", "location": "Paris, FR"},
                    }
                }
            ],
        },
        "done_reason": "stop",
        "done": True,
        "prompt_eval_count": 122,
        "eval_count": 33,
    }
    r = wire.decode_response(200, json.dumps(body).encode())
    assert r.finish_reason == "tool_calls"
    (call,) = r.tool_calls
    assert call.name == "get_current_weather" and call.id.startswith("call_")
    assert call.parsed_arguments() == {"format": "celsius", "location": "Paris, FR"}


def test_thinking_is_reasoning_not_text() -> None:
    body = dict(NO_STREAM, message={"role": "assistant", "content": "4", "thinking": "2+2 is 4"})
    r = wire.decode_response(200, json.dumps(body).encode())
    assert r.text == "4" and r.reasoning == "2+2 is 4"


@pytest.mark.parametrize(
    "body",
    [b"<html>proxy</html>", b"not json", b"[1, 2]", b'{"model": "x", "done": false, "message": {"content": "a"}}'],
)
def test_malformed_bodies_are_parse_errors(body: bytes) -> None:
    with pytest.raises(dsrs.ResponseParseError):
        wire.decode_response(200, body)


# --- streams ----------------------------------------------------------------------------------

# docs/api.md, "Chat Request (Streaming)": one object per line, then the final statistics object.
STREAM_LINES = [
    b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":"The","images":null},"done":false}',
    b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":" sky"},"done":false}',
    b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","done":true,"total_duration":4883583458,"load_duration":1334875,'
    b'"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}',
]


def test_stream_decoder_documented_lines() -> None:
    dec = wire.ChatStreamDecoder(model="llama3.2")
    deltas = [c.text for line in STREAM_LINES if (c := dec.feed(line)) is not None]
    assert deltas == ["The", " sky"]
    r = dec.finish()
    assert r.text == "The sky"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (26, 282)
    assert r.usage.detail["load_duration"] == 1334875


def test_stream_without_final_line_is_a_parse_error() -> None:
    dec = wire.ChatStreamDecoder(model="llama3.2")
    dec.feed(STREAM_LINES[0])
    with pytest.raises(dsrs.ResponseParseError, match="done: true"):
        dec.finish()


def test_stream_error_line_is_provider_unavailable() -> None:
    # docs.ollama.com/api/errors, "Errors that occur while streaming".
    dec = wire.ChatStreamDecoder(model="gemma3")
    dec.feed(STREAM_LINES[0])
    with pytest.raises(dsrs.ProviderUnavailableError, match="an error was encountered while running the model"):
        dec.feed(b'{"error":"an error was encountered while running the model"}')


def test_stream_malformed_line_is_a_parse_error() -> None:
    with pytest.raises(dsrs.ResponseParseError):
        wire.ChatStreamDecoder().feed(b"{truncated")
