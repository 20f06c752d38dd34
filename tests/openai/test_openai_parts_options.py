"""Content parts and documented options on every OpenAI-wire provider: golden bodies, refusals.

Chat parts: OpenAI API reference "Create chat completion" (``image_url``, ``input_audio``, ``file``).
Responses parts: "Create a model response" > input > ``input_text``/``input_image``/``input_file``.
Which vendor takes which part is the vendor's own reference (see ``dsrs_openai.vendors``).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

import dsrs
from dsrs.errors import InvalidRequestError
from dsrs.types import Audio, File, Image, Message, Tool, UnsupportedPartError

from .conftest import SECRET

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 16
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "
PDF = b"%PDF-1.7 hello"
B64_PNG = base64.b64encode(PNG).decode()


def body(lm: dsrs.LM, messages: Any, **kwargs: Any) -> dict[str, Any]:
    provider: Any = lm.provider()
    return provider.encode_json(lm.build_request(messages, **kwargs))  # type: ignore[no-any-return]


def user(*parts: Any) -> list[Message]:
    return [Message("user", parts)]


IMAGE = Image.from_bytes(PNG, "image/png")
AUDIO = Audio.from_bytes(WAV, "audio/wav")
PDF_FILE = File.from_bytes(PDF, "application/pdf", name="a.pdf")


def test_openai_chat_sends_every_part_type() -> None:
    lm = dsrs.LM("openai:gpt-4o", api_key=SECRET)
    assert body(lm, user("look", IMAGE, AUDIO, PDF_FILE))["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64_PNG}"}},
                {"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"}},
                {
                    "type": "file",
                    "file": {
                        "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
                        "filename": "a.pdf",
                    },
                },
            ],
        }
    ]


@pytest.mark.parametrize("vendor", ["groq", "together", "xai", "mistral", "openrouter"])
def test_vision_vendors_send_images(vendor: str) -> None:
    lm = dsrs.LM(f"{vendor}:some-model", api_key=SECRET)
    content = body(lm, user("what is it?", Image.from_url("https://example.com/cat.png")))["messages"][0]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.mark.parametrize(
    ("vendor", "part"),
    [
        ("deepseek", IMAGE),
        ("cerebras", IMAGE),
        ("groq", AUDIO),
        ("groq", PDF_FILE),
        ("mistral", AUDIO),
        ("xai", PDF_FILE),
    ],
)
def test_parts_a_vendor_does_not_take_are_refused_before_sending(server: Any, vendor: str, part: Any) -> None:
    lm = dsrs.LM(f"{vendor}:some-model", api_key=SECRET, base_url=server.url)
    with pytest.raises(UnsupportedPartError) as info:
        lm.call(user("hi", part))
    assert info.value.provider == vendor and type(part).__name__ in str(info.value)
    assert server.requests == []  # nothing was sent


def test_openrouter_takes_audio_and_files() -> None:
    lm = dsrs.LM("openrouter:google/gemini-2.5-flash", api_key=SECRET)
    kinds = [p["type"] for p in body(lm, user(AUDIO, PDF_FILE))["messages"][0]["content"]]
    assert kinds == ["input_audio", "file"]


def test_parts_reach_the_server_as_sent(server: Any) -> None:
    lm = dsrs.LM("openai:gpt-4o-mini", api_key=SECRET, base_url=server.url)
    lm.call(user("describe", IMAGE))
    (req,) = server.requests
    assert req.json()["messages"][0]["content"][1]["image_url"]["url"] == f"data:image/png;base64,{B64_PNG}"


# --- Responses API ----------------------------------------------------------------------------


def test_responses_input_image_and_input_file() -> None:
    lm = dsrs.LM("openai-responses:gpt-4.1", api_key=SECRET)
    parts = [IMAGE, Image.from_url("https://example.com/x.jpg", detail="high"), PDF_FILE]
    parts.append(File.from_url("https://example.com/paper.pdf"))
    sent = body(lm, [Message("system", "be brief"), Message("user", ("read these", *parts))])
    assert sent["instructions"] == "be brief"
    assert sent["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "read these"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{B64_PNG}", "detail": "auto"},
                {"type": "input_image", "image_url": "https://example.com/x.jpg", "detail": "high"},
                {
                    "type": "input_file",
                    "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
                    "filename": "a.pdf",
                },
                {"type": "input_file", "file_url": "https://example.com/paper.pdf"},
            ],
        }
    ]


def test_responses_refuses_audio_and_media_in_instructions() -> None:
    lm = dsrs.LM("openai-responses:gpt-4.1", api_key=SECRET)
    with pytest.raises(UnsupportedPartError, match="Audio"):
        body(lm, user("listen", AUDIO))
    with pytest.raises(UnsupportedPartError, match="instructions"):
        body(lm, [Message("system", ("sys", IMAGE)), Message("user", "hi")])


def test_responses_tools_send_strict_from_the_tool() -> None:
    lm = dsrs.LM("openai-responses:gpt-4.1", api_key=SECRET)
    tools = [
        Tool("a", "", {"type": "object", "properties": {}}, strict=True),  # type: ignore[call-arg]
        Tool("b", "", {"type": "object", "properties": {}}),
    ]
    sent = body(lm, "hi", tools=tools)["tools"]
    assert [(t["name"], t["strict"]) for t in sent] == [("a", True), ("b", False)]


def test_chat_tools_keep_strict() -> None:
    lm = dsrs.LM("openai:gpt-4o", api_key=SECRET)
    tool = Tool("a", "", {"type": "object", "properties": {}}, strict=True)  # type: ignore[call-arg]
    assert body(lm, "hi", tools=[tool])["tools"][0]["function"]["strict"] is True


# --- options each vendor documents --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "options"),
    [
        # docs.mistral.ai "Reasoning" (reasoning_effort) and the chat API's prompt_cache_key
        ("mistral:mistral-small-latest", {"reasoning_effort": "high", "prompt_cache_key": "user-42"}),
        # OpenAI "Create chat completion": prompt_cache_key / prompt_cache_retention, and the newer
        # prompt_cache_options / moderation fields
        ("openai:gpt-4o", {"prompt_cache_key": "k", "prompt_cache_retention": "24h"}),
        ("openai:gpt-4o", {"prompt_cache_options": {"ttl": "1h"}, "moderation": {"enabled": True}}),
    ],
)
def test_documented_options_are_sent(model: str, options: dict[str, Any]) -> None:
    lm = dsrs.LM(model, api_key=SECRET, options=options)
    sent = body(lm, "hi")
    assert {k: sent[k] for k in options} == options


def test_a_typo_names_the_closest_option() -> None:
    lm = dsrs.LM("mistral:mistral-small-latest", api_key=SECRET, options={"reasoning_efort": "low"})
    with pytest.raises(InvalidRequestError, match=r"'reasoning_efort' \(did you mean 'reasoning_effort'\?\)"):
        body(lm, "hi")


def test_extra_body_is_the_documented_passthrough() -> None:
    lm = dsrs.LM("groq:llama-3.3-70b-versatile", api_key=SECRET, options={"extra_body": {"vendor_flag": 1}})
    assert body(lm, "hi")["vendor_flag"] == 1


def test_one_provider_two_codecs_no_provider_inside_a_provider() -> None:
    provider: Any = dsrs.LM("openai:gpt-4o", api_key=SECRET).provider()
    assert not [k for k, v in vars(provider).items() if isinstance(v, dsrs.Provider)]
    codex = dsrs.LM("openai:codex-mini-latest", api_key=SECRET)
    assert "input" in body(codex, "hi") and "messages" not in body(codex, "hi")


def test_codex_refuses_media_parts() -> None:
    from dsrs_openai.codex import render_prompt

    with pytest.raises(UnsupportedPartError, match="codex"):
        render_prompt((Message("user", ("look", IMAGE)),))
    assert render_prompt((Message("user", "plain"),)) == "plain"
