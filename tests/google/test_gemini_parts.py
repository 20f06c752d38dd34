"""Content parts on the Gemini wire and 2xx bodies of the wrong types.

Parts: Gemini API reference, "Content" / "Part" (``text``, ``inlineData`` {mimeType, data base64},
``fileData`` {mimeType, fileUri}); the 20 MB inline request limit is from the image and document
understanding guides.
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
from dsrs_google import wire

PNG = b"\x89PNG\r\n\x1a\n" + b"\x03" * 8
PDF = b"%PDF-1.5 x"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


def req(*messages: Message, model: str = "gemini-2.5-flash") -> LMRequest:
    return LMRequest(provider="google", model=model, messages=messages)


def test_every_part_type_golden() -> None:
    content = (
        "describe these",
        Image.from_bytes(PNG, "image/png"),
        Audio.from_bytes(WAV, "audio/wav"),
        File.from_bytes(PDF, "application/pdf"),
        File.from_url("https://generativelanguage.googleapis.com/v1beta/files/abc", media_type="application/pdf"),
        Image.from_url("gs://bucket/cat.jpg"),
    )
    assert wire.encode_body(req(Message("user", content)))["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "describe these"},
                {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
                {"inlineData": {"mimeType": "audio/wav", "data": base64.b64encode(WAV).decode()}},
                {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(PDF).decode()}},
                {
                    "fileData": {
                        "mimeType": "application/pdf",
                        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
                    }
                },
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpg"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ((Message("user", (Image.from_url("https://example.com/photo"),)),), "exact media type"),
        ((Message("system", ("be brief", Image.from_bytes(PNG, "image/png"))), Message("user", "hi")), "system"),
        (
            (
                Message("user", "x"),
                Message("tool", ("r", File.from_bytes(PDF, "application/pdf")), tool_call_id="c", name="f"),
            ),
            "tool result",
        ),
    ],
)
def test_parts_the_wire_cannot_carry_are_refused(messages: tuple[Message, ...], needle: str) -> None:
    with pytest.raises(UnsupportedPartError, match=needle) as info:
        wire.encode_body(req(*messages))
    assert info.value.provider == "google"


def test_inline_media_over_the_request_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_INLINE_BYTES", 16)
    with pytest.raises(UnsupportedPartError, match="Files API"):
        wire.encode_body(req(Message("user", (Image.from_bytes(PNG * 3, "image/png"),))))


def test_parts_are_refused_before_anything_is_sent(key: str) -> None:
    seen: list[Any] = []

    def handler(r: Any) -> Reply:
        seen.append(r)
        return Reply(500, {})

    with LoopbackServer(handler) as srv:
        lm = dsrs.LM("gemini-2.5-flash", base_url=srv.url, api_key=key)
        with pytest.raises(UnsupportedPartError):
            lm.call([Message("user", (Image.from_url("https://example.com/photo"),))])
    assert seen == []


def _candidate(parts: Any, **extra: Any) -> bytes:
    return json.dumps(
        {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}], **extra}
    ).encode()


@pytest.mark.parametrize(
    "body",
    [
        _candidate("not a list"),
        _candidate(["a str part"]),
        _candidate([{"text": {"nested": "object"}}]),
        _candidate([{"text": 42}]),
        _candidate([{"functionCall": "f"}]),
        _candidate([{"functionCall": {"args": {}}}]),
        _candidate([{"functionCall": {"name": "f", "args": "not an object"}}]),
        _candidate([{"text": "ok"}], usageMetadata="lots"),
        _candidate([{"text": "ok"}], usageMetadata={"promptTokenCount": "ten"}),
        json.dumps({"candidates": [{"content": "text", "finishReason": "STOP"}]}).encode(),
        json.dumps({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": 1}]}).encode(),
    ],
)
def test_wrong_types_in_a_2xx_body_are_parse_errors(body: bytes) -> None:
    with pytest.raises(dsrs.ResponseParseError, match=r"unexpected Gemini response shape|finishReason is a"):
        wire.decode_response(200, body, model="gemini-2.5-flash")


def test_wrong_types_in_a_stream_event_are_parse_errors() -> None:
    dec = wire.GeminiStreamDecoder(model="gemini-2.5-flash")
    with pytest.raises(dsrs.ResponseParseError, match="stream event shape"):
        dec.feed(_candidate([{"text": ["list"]}]).decode())


def test_wrong_types_over_the_wire_are_a_lane_fault(key: str) -> None:
    with LoopbackServer(lambda r: Reply(200, json.loads(_candidate([{"text": {"x": 1}}])))) as srv:
        lm = dsrs.LM("gemini-2.5-flash", base_url=srv.url, api_key=key)
        with pytest.raises(dsrs.ResponseParseError):
            lm.call("hi")


@pytest.mark.parametrize("stream", [False, True])
def test_a_key_echoed_in_a_2xx_body_never_reaches_the_error(stream: bool) -> None:
    secret = "AIzaSyECHO-0123456789abcdefghijklmnop"
    echo = {"candidates": [{"content": {"parts": [{"text": {"echo": secret}}]}, "finishReason": "STOP"}]}

    def handler(r: Any) -> Reply:
        if stream:
            return Reply(
                200, headers={"content-type": "text/event-stream"}, chunks=[f"data: {json.dumps(echo)}\n\n".encode()]
            )
        return Reply(200, echo)

    with LoopbackServer(handler) as srv:
        lm = dsrs.LM("gemini-2.5-flash", base_url=srv.url, api_key=secret)
        with pytest.raises(dsrs.ResponseParseError) as info:
            list(lm.stream("hi")) if stream else lm.call("hi")
    err = info.value
    assert secret not in str(err) and secret not in repr(err) and secret not in (err.body or "")


def test_a_typo_in_an_option_names_the_closest_one() -> None:
    r = LMRequest(
        provider="google", model="gemini-2.5-flash", messages=(Message("user", "x"),), options={"thinking_budjet": 1}
    )
    with pytest.raises(dsrs.InvalidRequestError, match=r"thinking_budjet \(did you mean thinking_budget\?\)"):
        wire.encode_body(r)


def test_media_resolution_option_is_sent() -> None:
    r = LMRequest(
        provider="google",
        model="gemini-2.5-flash",
        messages=(Message("user", ("x", Image.from_bytes(PNG, "image/png"))),),
        options={"media_resolution": "MEDIA_RESOLUTION_LOW"},
    )
    assert wire.encode_body(r)["generationConfig"] == {"mediaResolution": "MEDIA_RESOLUTION_LOW"}
