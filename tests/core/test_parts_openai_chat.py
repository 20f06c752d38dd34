"""Content parts on the OpenAI Chat Completions wire: golden bodies per part type, refusals.

Shapes: OpenAI API reference, "Create chat completion" > messages > user message > content parts
(``text``, ``image_url`` {url, detail}, ``input_audio`` {data, format: wav|mp3}, ``file``
{file_data, filename}).
"""

from __future__ import annotations

import base64
import dataclasses

import pytest

from dsrs.types import Audio, File, Image, LMRequest, Message, Text, UnsupportedPartError
from dsrs.wire import openai_chat
from dsrs.wire.openai_chat import WireOptions

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "
PDF = b"%PDF-1.4 tiny"


def _req(*content: object, role: str = "user") -> LMRequest:
    return LMRequest(provider="p", model="m", messages=(Message(role, content),))  # type: ignore[arg-type]


def _content(req: LMRequest, options: WireOptions = openai_chat.DEFAULT_OPTIONS) -> object:
    return openai_chat.encode_body(req, options=options)["messages"][0]["content"]


def test_image_bytes_become_a_data_url_with_detail() -> None:
    img = Image.from_bytes(PNG, "image/png", detail="low")
    assert _content(_req("what is this?", img)) == [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode(), "detail": "low"},
        },
    ]


def test_image_url_is_sent_as_the_url() -> None:
    img = Image.from_url("https://example.com/cat.jpg")
    assert _content(_req(img)) == [{"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]


def test_openai_style_dict_parts_round_trip() -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    part = {"type": "image_url", "image_url": {"url": data_url, "detail": "high"}}
    assert _content(_req({"type": "text", "text": "hi"}, part)) == [{"type": "text", "text": "hi"}, part]


@pytest.mark.parametrize(("media_type", "fmt"), [("audio/wav", "wav"), ("audio/x-wav", "wav"), ("audio/mpeg", "mp3")])
def test_audio_is_input_audio_base64_with_format(media_type: str, fmt: str) -> None:
    clip = Audio.from_bytes(WAV, media_type)
    assert _content(_req(clip)) == [
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(), "format": fmt}}
    ]


def test_file_is_file_data_with_filename() -> None:
    doc = File.from_bytes(PDF, "application/pdf", name="report.pdf")
    assert _content(_req("summarise", doc)) == [
        {"type": "text", "text": "summarise"},
        {
            "type": "file",
            "file": {
                "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
                "filename": "report.pdf",
            },
        },
    ]


def test_file_without_a_name_gets_one_from_its_type() -> None:
    doc = File.from_bytes(PDF, "application/pdf")
    assert _content(_req(doc))[0]["file"]["filename"] == "file.pdf"  # type: ignore[index]


def test_text_parts_with_options_stay_a_list() -> None:
    # A Text with options is kept as a part (options another wire reads are ignored here).
    assert _content(_req(Text("cached", options={"cache_control": {"type": "ephemeral"}}))) == [
        {"type": "text", "text": "cached"}
    ]


@pytest.mark.parametrize(
    ("part", "needle"),
    [
        (Audio.from_bytes(b"OggS", "audio/ogg"), "WAV or MP3"),
        (Audio.from_url("https://example.com/a.wav"), "not a URL"),
        (File.from_url("https://example.com/a.pdf"), "not a URL"),
    ],
)
def test_parts_the_wire_cannot_carry_are_refused(part: object, needle: str) -> None:
    with pytest.raises(UnsupportedPartError, match=needle) as info:
        openai_chat.encode_body(_req(part))
    assert type(part).__name__ in str(info.value) and info.value.provider == "p"


def test_a_profile_without_audio_refuses_audio_and_names_the_part() -> None:
    text_and_images = WireOptions(parts=frozenset({"image"}))
    assert _content(_req(Image.from_bytes(PNG, "image/png")), text_and_images)
    with pytest.raises(UnsupportedPartError, match=r"cannot send this Audio part \(audio/wav\)"):
        _content(_req(Audio.from_bytes(WAV, "audio/wav")), text_and_images)
    with pytest.raises(UnsupportedPartError, match="text only"):
        _content(_req(Image.from_bytes(PNG, "image/png")), dataclasses.replace(text_and_images, parts=frozenset()))


def test_media_outside_user_messages_is_refused() -> None:
    with pytest.raises(UnsupportedPartError, match="user messages"):
        openai_chat.encode_body(_req(Image.from_bytes(PNG, "image/png"), role="system"))


def test_system_role_profile_sends_system_and_developer_as_user() -> None:
    req = LMRequest(
        provider="p", model="m", messages=(Message("system", "a"), Message("developer", "b"), Message("user", "c"))
    )
    body = openai_chat.encode_body(req, options=WireOptions(system_role="user"))
    assert [m["role"] for m in body["messages"]] == ["user", "user", "user"]
