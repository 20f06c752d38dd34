"""The codec without a server: the exact body sent, parts and options refused before sending."""

from __future__ import annotations

import json

import pytest
from dsrs_acme_example.wire import WIRE, AcmeCodec

from dsrs import LMRequest, Message, ResponseFormat, Tool, ToolCall
from dsrs.errors import InvalidRequestError, ResponseParseError
from dsrs.transport import HttpResponse
from dsrs.types import Audio, Image, Text, UnsupportedPartError
from dsrs.wire import DEFAULT_MAX_TOKENS, Endpoint, SSEEvent

ENDPOINT = Endpoint("http://127.0.0.1:1", {"authorization": "Bearer k"}, timeout=30.0)


def codec() -> AcmeCodec:
    def failure(request: LMRequest, code: str, message: str) -> InvalidRequestError:
        return InvalidRequestError(f"{code}: {message}")

    return AcmeCodec(failure)


def req(*messages: Message, **fields: object) -> LMRequest:
    return LMRequest("acme", "acme-large", messages or (Message("user", "hi"),), **fields)  # type: ignore[arg-type]


def test_golden_body() -> None:
    request = req(
        Message("developer", "be brief"),
        Message("user", (Text("what is this?"), Image.from_url("https://example.com/a.png", detail="low"))),
        temperature=0.2,
        max_tokens=64,
        seed=7,
        stop=("END",),
        response_format=ResponseFormat(name="r", schema={"type": "object"}),
        tools=(Tool("lookup", "find a thing", {"type": "object", "properties": {}}),),
        tool_choice="required",
        options={"k": 40},
    )
    http = codec().encode(request, ENDPOINT, stream=False)
    assert (http.method, http.url, http.timeout) == ("POST", "http://127.0.0.1:1/v2/chat", 30.0)
    assert http.headers == {"authorization": "Bearer k", "accept": "application/json"}
    assert json.loads(http.content or b"") == {
        "model": "acme-large",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                ],
            },
        ],
        "stream": False,
        "max_tokens": 64,
        "temperature": 0.2,
        "seed": 7,
        "stop_sequences": ["END"],
        "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "find a thing",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
        "tool_choice": "REQUIRED",
        "k": 40,
    }


def test_default_output_cap_is_the_shared_one() -> None:
    body = json.loads(codec().encode(req(), ENDPOINT, stream=True).content or b"")
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS and body["stream"] is True


@pytest.mark.parametrize(
    ("request_", "names"),
    [
        (req(Message("user", (Audio(data=b"RIFF", media_type="audio/wav"),))), "Audio"),
        (req(options={"top_k": 3}), "top_k"),
        (req(tool_choice={"type": "function", "name": "x"}), "tool_choice"),
    ],
)
def test_what_the_wire_cannot_carry_is_refused_before_sending(request_: LMRequest, names: str) -> None:
    with pytest.raises(InvalidRequestError, match=names) as info:
        codec().encode(request_, ENDPOINT, stream=False)
    assert info.value.provider == "acme"
    if names == "Audio":
        assert isinstance(info.value, UnsupportedPartError)


def test_thinking_goes_back_with_its_answer() -> None:
    body = {
        "finish_reason": "COMPLETE",
        "message": {"content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "4"}]},
        "usage": {"tokens": {"input_tokens": 3, "output_tokens": 1}},
    }
    answer = codec().decode(req(), HttpResponse(200, {}, json.dumps(body).encode()))
    assert (answer.text, answer.reasoning, answer.finish_reason) == ("4", "hmm", "stop")
    assert answer.provider_state == {WIRE: {"thinking": "hmm"}}
    follow_up = req(Message("user", "2+2?"), answer.message(), Message("user", "and 3+3?"))
    sent = json.loads(codec().encode(follow_up, ENDPOINT, stream=False).content or b"")
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "4"}],
    }


@pytest.mark.parametrize(
    "body",
    [
        b"<html>bad gateway</html>",
        b"[]",
        b'{"message": {"content": "not a list"}, "usage": {"tokens": {}}}',
        b'{"message": {"content": []}, "usage": {"tokens": {"input_tokens": -5, "output_tokens": 1}}}',
        b'{"message": {"content": []}, "usage": {"tokens": {"input_tokens": "3", "output_tokens": 1}}}',
        b'{"message": {"content": [{"type": "text", "text": 42}]}, "usage": {"tokens": {}}}',
    ],
)
def test_wrong_shapes_in_a_2xx_body_are_parse_errors(body: bytes) -> None:
    with pytest.raises(ResponseParseError):
        codec().decode(req(), HttpResponse(200, {}, body))


def events(*pairs: tuple[str, dict[str, object]]) -> list[SSEEvent]:
    return [SSEEvent(json.dumps({"type": name, **data}), event=name) for name, data in pairs]


def test_a_streamed_answer_with_thinking_and_a_tool_call() -> None:
    decoder = codec().stream_decoder(req())
    chunks = [
        decoder.feed(e)
        for e in events(
            ("message-start", {"id": "g", "delta": {"message": {"role": "assistant"}}}),
            ("content-delta", {"delta": {"message": {"content": {"thinking": "let me see"}}}}),
            ("content-delta", {"delta": {"message": {"content": {"text": "Looking"}}}}),
            (
                "tool-call-start",
                {
                    "delta": {
                        "message": {"tool_calls": {"id": "c1", "function": {"name": "lookup", "arguments": '{"q"'}}}
                    }
                },
            ),
            ("tool-call-delta", {"delta": {"message": {"tool_calls": {"function": {"arguments": ': "x"}'}}}}}),
            (
                "message-end",
                {"delta": {"finish_reason": "TOOL_CALL", "usage": {"tokens": {"input_tokens": 5, "output_tokens": 3}}}},
            ),
        )
    ]
    assert [(c.text, c.reasoning) for c in chunks if c is not None] == [("", "let me see"), ("Looking", "")]
    answer = decoder.finish()
    assert (answer.text, answer.reasoning, answer.finish_reason) == ("Looking", "let me see", "tool_calls")
    assert answer.tool_calls == (ToolCall("c1", "lookup", '{"q": "x"}'),)
    assert answer.usage.total_tokens == 8


def test_a_stream_cut_before_message_end_is_a_parse_error() -> None:
    decoder = codec().stream_decoder(req())
    for e in events(("content-delta", {"delta": {"message": {"content": {"text": "par"}}}})):
        decoder.feed(e)
    with pytest.raises(ResponseParseError, match="message-end"):
        decoder.finish()


def test_a_tool_call_in_a_whole_answer() -> None:
    body = {
        "message": {
            "content": [],
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        "usage": {"tokens": {"input_tokens": 2, "output_tokens": 1}},
    }
    answer = codec().decode(req(), HttpResponse(200, {}, json.dumps(body).encode()))
    assert answer.tool_calls == (ToolCall("c1", "lookup", "{}"),) and answer.finish_reason is None
