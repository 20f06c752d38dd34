"""The data model providers build on: content parts, provider state across turns, usage merging,
tools from functions, and what Predict returns for tool calls, Optional outputs and empty replies."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal, Optional

import pytest

import dsrs
from dsrs.testing import Reply, openai_wire_server
from dsrs.types import LmUsage, Message, normalize_messages

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_openai_style_part_dicts_become_parts_not_text() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    (m,) = normalize_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ]
    )
    assert isinstance(m.content, tuple) and len(m.content) == 2
    text, image = m.content
    assert isinstance(text, dsrs.Text) and text.text == "what is this?"
    assert isinstance(image, dsrs.Image) and image.data == PNG and image.media_type == "image/png"
    assert m.text == "what is this?"


def test_plain_text_parts_collapse_to_one_string() -> None:
    (m,) = normalize_messages([{"role": "user", "content": ["a", {"type": "text", "text": "b"}]}])
    assert m.content == "ab"


def test_parts_from_bytes_path_and_url(tmp_path: Path) -> None:
    f = tmp_path / "doc.pdf"
    f.write_bytes(b"%PDF-1.4 tiny")
    doc = dsrs.File.from_path(f)
    assert doc.media_type == "application/pdf" and doc.name == "doc.pdf" and doc.data == b"%PDF-1.4 tiny"
    remote = dsrs.Image.from_url("https://example.invalid/cat.jpg")
    assert remote.url and remote.data is None and remote.media_type == "image/jpeg"
    audio = dsrs.Audio.from_bytes(b"RIFF....WAVE", "audio/wav")
    assert audio.base64() == base64.b64encode(b"RIFF....WAVE").decode()
    with pytest.raises(ValueError, match="audio"):
        dsrs.Audio.from_bytes(b"x", "image/png")
    with pytest.raises(ValueError, match="exactly one"):
        dsrs.Image()
    (tmp_path / "noext").write_bytes(b"")
    with pytest.raises(ValueError, match="media type"):
        dsrs.File.from_path(tmp_path / "noext")


def test_parts_are_identified_by_their_bytes_in_cache_keys() -> None:
    lm = dsrs.LM("fake:echo")
    a = lm.build_request([Message("user", ("look", dsrs.Image.from_bytes(PNG, "image/png")))])
    b = lm.build_request([Message("user", ("look", dsrs.Image.from_bytes(PNG + b"x", "image/png")))])
    c = lm.build_request([Message("user", ("look", dsrs.Image.from_bytes(PNG, "image/png")))])
    assert a.cache_key() != b.cache_key()
    assert a.cache_key() == c.cache_key()
    assert base64.b64encode(PNG).decode() not in str(a.canonical())  # the hash, not the bytes


def test_unknown_part_types_and_bytes_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown content part type 'video'"):
        normalize_messages([{"role": "user", "content": [{"type": "video", "url": "x"}]}])
    with pytest.raises(TypeError, match="wrap them"):
        Message("user", b"raw bytes")  # type: ignore[arg-type]


def test_provider_state_travels_with_the_assistant_message() -> None:
    state = {"anthropic": {"blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}]}}
    r = dsrs.LMResponse(text="done", tool_calls=(dsrs.ToolCall("t1", "f", "{}"),), provider_state=state)
    m = r.message()
    assert m.role == "assistant" and m.provider_state == state and m.tool_calls == r.tool_calls
    again = dsrs.LMResponse.from_dict(r.to_dict())
    assert again.provider_state == state
    (back,) = normalize_messages([m.to_dict()])
    assert back.provider_state == state


def test_usage_adds_cache_writes_and_detail_numerically() -> None:
    a = LmUsage.from_tokens(
        100, 10, cached_tokens=50, cache_write_tokens=30, detail={"cache_write_1h": 300, "note": "a"}
    )
    b = LmUsage.from_tokens(100, 10, cache_write_tokens=20, detail={"cache_write_1h": 300, "note": "b"})
    total = a + b
    assert total.cache_write_tokens == 50 and total.cached_tokens == 50
    assert total.detail == {"cache_write_1h": 600, "note": "b"}
    assert total.to_dict()["cache_write_tokens"] == 50


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: int = 1) -> str:
    """Current weather for a city."""
    return f"{city}: sunny"


def test_tools_from_functions() -> None:
    tool = dsrs.Tool.from_function(get_weather, strict=True)
    assert tool.name == "get_weather" and tool.description == "Current weather for a city."
    params = tool.parameters
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string"}
    assert params["properties"]["unit"]["enum"] == ["c", "f"]
    assert tool.strict is True
    request = dsrs.LM("fake:echo").build_request("weather?", tools=[get_weather])
    assert request.tools[0].name == "get_weather"
    with pytest.raises(TypeError, match=r"list of dsrs\.Tool or functions"):
        dsrs.LM("fake:echo").build_request("weather?", tools=get_weather)  # type: ignore[arg-type]


def test_function_tools_reach_the_wire() -> None:
    with openai_wire_server() as srv:
        dsrs.LM("m", base_url=srv.url).call("weather?", tools=[get_weather])
        sent = srv.requests[-1].json()["tools"][0]["function"]
        assert sent["name"] == "get_weather" and sent["parameters"]["required"] == ["city"]


class Forecast(dsrs.Signature):
    """Answer about the weather."""

    question: str = dsrs.InputField()
    answer: str = dsrs.OutputField()


class MaybeAnswer(dsrs.Signature):
    """Answer if you know."""

    question: str = dsrs.InputField()
    answer: Optional[int] = dsrs.OutputField()  # noqa: UP045 - the spelling users write


def _tool_call_reply() -> dict[str, object]:
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
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
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def test_predict_returns_the_tool_calls() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(200, _tool_call_reply()))
        pred = dsrs.Predict(Forecast, lm=dsrs.LM("m", base_url=srv.url), tools=[get_weather]).forward(question="Paris?")
    assert pred.answer is None
    assert [(c.name, c.parsed_arguments()) for c in pred.tool_calls] == [("get_weather", {"city": "Paris"})]


def _reply(text: str) -> dict[str, object]:
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def test_an_optional_output_answered_none_stays_none() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(200, _reply("[[ ## answer ## ]]\nNone\n\n[[ ## completed ## ]]")))
        pred = dsrs.Predict(MaybeAnswer, lm=dsrs.LM("m", base_url=srv.url)).forward(question="?")
    assert pred.answer is None


def test_an_empty_reply_is_an_adapter_parse_error() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(200, _reply("")))
        with pytest.raises(dsrs.AdapterParseError, match="empty"):
            dsrs.Predict(Forecast, lm=dsrs.LM("m", base_url=srv.url)).forward(question="?")
