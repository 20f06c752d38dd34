"""Golden request bodies: every parameter and content block type, as the Messages API reference
spells them (https://docs.anthropic.com/en/api/messages). Sans-IO: the codec alone, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

import dsrs
from dsrs.errors import InvalidRequestError
from dsrs.types import LMRequest, Message, ToolCall
from dsrs.wire import DEFAULT_MAX_TOKENS, Endpoint
from dsrs_anthropic.codec import AnthropicCodec, messages_url

ENDPOINT = Endpoint("http://127.0.0.1:1", {"x-api-key": "k", "anthropic-version": "2023-06-01"}, 30.0)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
PDF = b"%PDF-1.4 tiny"


def req(*messages: Any, model: str = "claude-sonnet-4-5", **kw: Any) -> LMRequest:
    msgs = tuple(m if isinstance(m, Message) else Message(**m) for m in messages)
    return LMRequest(provider="anthropic", model=model, messages=msgs, **kw)


def body(request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
    http = AnthropicCodec().encode(request, ENDPOINT, stream=stream)
    assert http.method == "POST" and http.url == "http://127.0.0.1:1/v1/messages"
    assert http.content is not None
    data: dict[str, Any] = json.loads(http.content)
    return data


def test_minimal_body_sends_the_documented_default_max_tokens() -> None:
    assert body(req({"role": "user", "content": "Hello, Claude"})) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hello, Claude"}],
    }


def test_every_parameter() -> None:
    r = req(
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Capital of France?"},
        temperature=0.2,
        max_tokens=512,
        stop=("\n\nHuman:", "END"),
        options={
            "top_p": 0.9,
            "top_k": 40,
            "metadata": {"user_id": "u-123"},
            "service_tier": "standard_only",
            "output_config": {"effort": "high"},
            "extra_body": {"inference_geo": "us"},
        },
    )
    assert body(r, stream=True) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": "Be terse.\n\nAnswer in French.",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "temperature": 0.2,
        "stop_sequences": ["\n\nHuman:", "END"],
        "top_p": 0.9,
        "top_k": 40,
        "metadata": {"user_id": "u-123"},
        "service_tier": "standard_only",
        "output_config": {"effort": "high"},
        "inference_geo": "us",
        "stream": True,
    }


def test_headers_beta_and_accept() -> None:
    r = req(
        {"role": "user", "content": "x"}, options={"anthropic_beta": ["context-1m-2025-08-07", "files-api-2025-04-14"]}
    )
    http = AnthropicCodec().encode(r, ENDPOINT, stream=True)
    assert http.headers["anthropic-beta"] == "context-1m-2025-08-07,files-api-2025-04-14"
    assert http.headers["accept"] == "text/event-stream"
    assert http.headers["x-api-key"] == "k" and "authorization" not in {k.lower() for k in http.headers}


def test_cache_control_on_system_and_user_blocks() -> None:
    ephemeral = {"cache_control": {"type": "ephemeral"}}
    r = req(
        {"role": "system", "content": [dsrs.Text("You are a librarian.", options=ephemeral)]},
        {
            "role": "user",
            "content": [dsrs.Text("a long book", options={"cache_control": {"type": "ephemeral", "ttl": "1h"}}), "Q?"],
        },
    )
    b = body(r)
    assert b["system"] == [{"type": "text", "text": "You are a librarian.", "cache_control": {"type": "ephemeral"}}]
    assert b["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a long book", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "Q?"},
            ],
        }
    ]


def test_images_and_documents() -> None:
    r = req(
        {
            "role": "user",
            "content": [
                dsrs.Image.from_bytes(PNG, "image/png"),
                dsrs.Image.from_url("https://example.com/cat.jpg"),
                dsrs.File.from_bytes(PDF, "application/pdf", name="report.pdf", cache_control={"type": "ephemeral"}),
                dsrs.File.from_url("https://example.com/paper.pdf"),
                dsrs.File.from_bytes(b"plain notes", "text/plain", citations={"enabled": True}),
                "Summarise.",
            ],
        }
    )
    import base64

    assert body(r)["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()},
            "title": "report.pdf",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"},
            "citations": {"enabled": True},
        },
        {"type": "text", "text": "Summarise."},
    ]


@pytest.mark.parametrize(
    ("part", "what"),
    [
        (dsrs.Audio.from_bytes(b"RIFF....", "audio/wav"), "audio"),
        (dsrs.Image.from_bytes(b"BM..", "image/bmp"), "image/bmp"),
        (dsrs.File.from_bytes(b"PK..", "application/zip"), "application/zip"),
        (dsrs.File.from_bytes(b"\xff\xfe", "text/plain"), "UTF-8"),
    ],
)
def test_parts_the_wire_cannot_carry_are_refused_before_sending(part: Any, what: str) -> None:
    with pytest.raises(dsrs.UnsupportedPartError) as info:
        body(req({"role": "user", "content": [part, "x"]}))
    assert what in str(info.value) and info.value.provider == "anthropic"


def test_image_in_an_assistant_turn_is_refused() -> None:
    with pytest.raises(dsrs.UnsupportedPartError, match="assistant message takes text only, not a image part"):
        body(
            req(
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [dsrs.Image.from_bytes(PNG, "image/png")]},
            )
        )


def test_image_in_system_prompt_is_refused() -> None:
    with pytest.raises(dsrs.UnsupportedPartError, match="system prompt takes text only"):
        body(
            req(
                {"role": "system", "content": [dsrs.Image.from_bytes(PNG, "image/png")]},
                {"role": "user", "content": "x"},
            )
        )


def test_tools_tool_choice_and_the_tool_turn() -> None:
    weather = dsrs.Tool(
        "get_weather",
        "Current weather in a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    thinking = {"type": "thinking", "thinking": "I should call the tool.", "signature": "EqQBCgIYAhIM..."}
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    r = req(
        {"role": "user", "content": "Weather in Paris and Rome?"},
        Message(
            "assistant",
            "Let me check.",
            tool_calls=(
                ToolCall("toolu_01", "get_weather", '{"city": "Paris"}'),
                ToolCall("toolu_02", "get_weather", '{"city": "Rome"}'),
            ),
            provider_state={"anthropic": {"thinking": [thinking, redacted]}, "gemini": {"ignored": True}},
        ),
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18C sunny"},
        {
            "role": "tool",
            "tool_call_id": "toolu_02",
            "content": [dsrs.Text("22C"), dsrs.Image.from_bytes(PNG, "image/png")],
        },
        {"role": "user", "content": "And tomorrow?"},
        tools=(weather,),
        tool_choice="get_weather",
        options={"disable_parallel_tool_use": True},
        max_tokens=2048,
    )
    b = body(r)
    assert b["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    assert b["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert b["messages"][1] == {
        "role": "assistant",
        "content": [
            thinking,
            redacted,
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    # Both results share one user turn (there is no tool role), the follow-up text after them.
    assert b["messages"][2]["role"] == "user"
    assert b["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C sunny"}
    assert b["messages"][2]["content"][1]["tool_use_id"] == "toolu_02"
    assert [x["type"] for x in b["messages"][2]["content"][1]["content"]] == ["text", "image"]
    assert b["messages"][2]["content"][2] == {"type": "text", "text": "And tomorrow?"}
    assert len(b["messages"]) == 3


@pytest.mark.parametrize(
    ("choice", "wire"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}), ("any", {"type": "any"}),
     ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
     ({"type": "auto"}, {"type": "auto"})],
)  # fmt: skip
def test_tool_choice_shapes(choice: Any, wire: dict[str, Any]) -> None:
    r = req({"role": "user", "content": "x"}, tools=(dsrs.Tool("f"),), tool_choice=choice)
    assert body(r)["tool_choice"] == wire


def test_tools_from_functions_and_strict() -> None:
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Current weather in a city."""
        return "18C"

    tool = dsrs.Tool.from_function(get_weather, strict=True)
    (sent,) = body(req({"role": "user", "content": "x"}, tools=(tool,)))["tools"]
    assert sent["name"] == "get_weather" and sent["description"] == "Current weather in a city."
    assert sent["strict"] is True and sent["input_schema"]["required"] == ["city"]
    assert "strict" not in body(req({"role": "user", "content": "x"}, tools=(dsrs.Tool("f"),)))["tools"][0]


def test_thinking_budget_forms() -> None:
    r = req({"role": "user", "content": "x"}, max_tokens=16000, options={"thinking": 10000})
    assert body(r)["thinking"] == {"type": "enabled", "budget_tokens": 10000}
    r = req(
        {"role": "user", "content": "x"},
        max_tokens=16000,
        options={"thinking": {"type": "enabled", "budget_tokens": 2000}},
    )
    assert body(r)["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body(req({"role": "user", "content": "x"}, options={"thinking": True}))["thinking"]["budget_tokens"] == 2048


def test_structured_output_native_and_forced_tool() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    rf = dsrs.ResponseFormat(name="reply", schema=schema)
    native = body(req({"role": "user", "content": "x"}, response_format=rf))
    assert native["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "tools" not in native
    forced = body(req({"role": "user", "content": "x"}, model="claude-opus-4-1", response_format=rf))
    assert "output_config" not in forced
    assert forced["tools"][-1]["name"] == "json_output_reply" and forced["tools"][-1]["input_schema"] == schema
    assert forced["tool_choice"] == {"type": "tool", "name": "json_output_reply"}
    loose = body(req({"role": "user", "content": "x"}, response_format=dsrs.ResponseFormat(type="json_object")))
    assert loose["tools"][-1]["input_schema"] == {"type": "object"}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"options": {"top_kk": 3}}, "unknown option 'top_kk'=3.*did you mean 'top_k'"),
    ({"options": {"reasoning_effort": "high"}}, "unknown option 'reasoning_effort'"),
    ({"options": {"top_p": 1.5}}, r"top_p must be a number in \[0, 1\], got 1.5"),
    ({"options": {"top_k": "40"}}, "top_k must be an int >= 1, got '40'"),
    ({"options": {"metadata": "u1"}}, "metadata must be a dict, got str"),
    ({"options": {"anthropic_beta": 7}}, "anthropic_beta must be a str or a list of str, got 7"),
    ({"temperature": 1.5}, r"temperature must be in \[0, 1\].*got 1.5"),
    ({"seed": 7}, "seed=7: the Anthropic Messages API has no seed parameter"),
    ({"options": {"thinking": 512}}, "budget_tokens must be an int >= 1024, got 512"),
    ({"options": {"thinking": 8000}}, r"budget_tokens \(8000\) must be below max_tokens \(4096\)"),
    ({"options": {"thinking": 2000}, "temperature": 0.5}, "cannot be combined with extended thinking"),
    ({"options": {"thinking": "lots"}}, "thinking must be a budget in tokens"),
    ({"tool_choice": "auto"}, "tool_choice='auto' needs tools="),
    ({"options": {"thinking": 2000, "top_k": 5}}, "top_k=5 cannot be combined with extended thinking"),
    ({"options": {"thinking": 2000, "top_p": 0.5}}, r"top_p=0.5 with extended thinking must be in \[0.95, 1\]"),
    (
        {"options": {"thinking": 2000}, "tools": (dsrs.Tool("f"),), "tool_choice": "f"},
        "tool_choice='f' forces a tool, which extended thinking does not allow",
    ),
]


@pytest.mark.parametrize(("kw", "message"), BAD)
def test_bad_parameters_are_refused_naming_the_parameter_and_value(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        body(req({"role": "user", "content": "x"}, **kw))


def test_a_tool_message_without_id_and_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]: a 'tool' message needs tool_call_id"):
        body(req({"role": "user", "content": "x"}, {"role": "tool", "content": "r"}))
    bad_args = Message("assistant", None, tool_calls=(ToolCall("t1", "f", "{not json"),))
    with pytest.raises(InvalidRequestError, match="tool call 'f': arguments are not JSON"):
        body(req({"role": "user", "content": "x"}, bad_args))
    with pytest.raises(InvalidRequestError, match="at least one user or assistant message"):
        body(req({"role": "system", "content": "only a system prompt"}))


def test_a_message_name_is_refused_except_on_tool_results() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]: name='ann': Anthropic messages carry no name"):
        body(req({"role": "user", "content": "x", "name": "ann"}))
    call = Message("assistant", None, tool_calls=(ToolCall("t1", "f", "{}"),))
    sent = body(
        req({"role": "user", "content": "x"}, call, {"role": "tool", "tool_call_id": "t1", "name": "f", "content": "r"})
    )
    assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]


def test_forced_tool_and_thinking_cannot_combine_on_an_old_model() -> None:
    rf = dsrs.ResponseFormat(schema={"type": "object"})
    with pytest.raises(InvalidRequestError, match="cannot be combined with extended thinking"):
        body(req({"role": "user", "content": "x"}, model="claude-3-5-haiku", max_tokens=8000, response_format=rf,
                 options={"thinking": 2000}))  # fmt: skip


def test_messages_url_never_doubles_v1() -> None:
    assert messages_url("https://api.anthropic.com") == "https://api.anthropic.com/v1/messages"
    assert messages_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1/messages"
