"""Content parts on Ollama's /api/chat and answers of the wrong types.

Ollama's API reference (docs/api.md, "Generate a chat completion" > "Chat request (with images)"):
a message carries ``images``, a list of base64-encoded images, for multimodal models; there is no
field for audio or documents.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import dsrs
from dsrs import LMRequest, Message
from dsrs.testing import LoopbackServer, Reply
from dsrs.types import Audio, File, Image, UnsupportedPartError
from dsrs_ollama import wire
from dsrs_ollama.testing import ollama_wire_server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x04" * 8


def req(*messages: Message) -> LMRequest:
    return LMRequest(provider="ollama", model="llava", messages=messages)


def test_images_go_in_the_message_images_list() -> None:
    body = wire.encode_body(req(Message("user", ("what is in this picture?", Image.from_bytes(PNG, "image/png")))))
    assert body["messages"] == [
        {"role": "user", "content": "what is in this picture?", "images": [base64.b64encode(PNG).decode()]}
    ]


@pytest.mark.parametrize(
    ("part", "needle"),
    [
        (Audio.from_bytes(b"RIFF....WAVE", "audio/wav"), "text and images only"),
        (File.from_bytes(b"%PDF", "application/pdf"), "text and images only"),
        (Image.from_url("https://example.com/cat.png"), "not a URL"),
    ],
)
def test_other_parts_are_refused_before_sending(ollama_server: LoopbackServer, part: Any, needle: str) -> None:
    lm = dsrs.LM("ollama:llava", base_url=ollama_server.url)
    with pytest.raises(UnsupportedPartError, match=needle) as info:
        lm.call([Message("user", ("hi", part))])
    assert info.value.provider == "ollama" and type(part).__name__ in str(info.value)
    assert ollama_server.requests == []


def test_images_reach_the_server() -> None:
    with ollama_wire_server(models=["llava:latest"]) as srv:
        lm = dsrs.LM("ollama:llava:latest", base_url=srv.url)
        lm.call([Message("user", ("describe", Image.from_bytes(PNG, "image/png")))])
        sent = srv.requests[-1].json()
    assert sent["messages"][0]["images"] == [base64.b64encode(PNG).decode()]


def _answer(message: Any, **extra: Any) -> bytes:
    return json.dumps({"model": "llava", "message": message, "done": True, **extra}).encode()


@pytest.mark.parametrize(
    "body",
    [
        _answer({"role": "assistant", "content": {"text": "object"}}),
        _answer({"role": "assistant", "content": ["a", "list"]}),
        _answer({"role": "assistant", "content": "ok", "thinking": 5}),
        _answer({"role": "assistant", "content": "", "tool_calls": "not a list"}),
        _answer({"role": "assistant", "content": "", "tool_calls": [{"function": "f"}]}),
        _answer({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}),
        _answer({"role": "assistant", "content": "ok"}, eval_count="many"),
    ],
)
def test_wrong_types_in_a_2xx_answer_are_parse_errors(body: bytes) -> None:
    with pytest.raises(dsrs.ResponseParseError, match="unexpected Ollama answer shape"):
        wire.decode_response(200, body, model="llava")


def test_wrong_types_in_a_stream_line_are_parse_errors() -> None:
    dec = wire.ChatStreamDecoder(model="llava")
    with pytest.raises(dsrs.ResponseParseError, match="stream line shape"):
        dec.feed(json.dumps({"message": {"role": "assistant", "content": 7}, "done": False}))


def test_wrong_types_over_the_wire_are_a_lane_fault() -> None:
    bad = LoopbackServer(lambda r: Reply(200, json.loads(_answer({"content": {"x": 1}}))))
    with bad as srv, pytest.raises(dsrs.ResponseParseError):
        dsrs.LM("ollama:llava", base_url=srv.url).call("hi")


def test_a_key_echoed_in_a_2xx_error_never_reaches_the_error() -> None:
    secret = "proxy-token-0123456789"
    echo = LoopbackServer(lambda r: Reply(200, {"error": f"token {secret} is not allowed"}))
    with echo as srv, pytest.raises(dsrs.LMError) as info:
        dsrs.LM("ollama:llava", base_url=srv.url, api_key=secret).call("hi")
    err = info.value
    assert secret not in str(err) and secret not in repr(err) and secret not in (err.body or "")
