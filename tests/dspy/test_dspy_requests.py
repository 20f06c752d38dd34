"""Explicit ``dspy.lm15.Request`` calls: what reaches the wire, what comes back, what is refused by name."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dspy import lm15
from dspy.utils import exceptions as dspy_errors

import dsrs
import dsrs_dspy
from dsrs.testing import LoopbackServer, RecordedRequest, Reply

from .conftest import chat_bodies


def _completion(message: dict[str, Any], finish: str = "stop") -> Reply:
    """OpenAI Chat Completions body (https://platform.openai.com/docs/api-reference/chat/object)."""
    return Reply(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "loopback-model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15},
        },
        headers={"content-type": "application/json"},
    )


@pytest.fixture
def tool_server() -> Iterator[LoopbackServer]:
    """Answers every request with one call of ``get_weather`` (arguments as the wire carries them: JSON text)."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}

    def reply(req: RecordedRequest) -> Reply:
        return _completion({"content": None, "tool_calls": [call]}, finish="tool_calls")

    with LoopbackServer(reply) as srv:
        yield srv


def _lm(srv: LoopbackServer) -> Any:
    return dsrs_dspy.LM(dsrs.LM("openai-compatible:loopback-model", base_url=f"{srv.url}/v1"))


def _request(dspy_lm: Any, *messages: Any, **config: Any) -> Any:
    return lm15.Request(model=dspy_lm.model, messages=messages, config=lm15.Config(**config))


WEATHER = lm15.FunctionTool(
    "get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}}
)


def test_a_request_returns_a_response_with_dsrs_usage(server: LoopbackServer) -> None:
    dspy_lm = _lm(server)
    response = dspy_lm(_request(dspy_lm, lm15.Message.user("[[ ## question ## ]]\nhi"), max_tokens=9, seed=4))
    assert isinstance(response, lm15.Response)
    assert response.text.startswith("[[ ## answer ## ]]")
    assert response.model == "openai-compatible:loopback-model"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.provider_data["dsrs"]["cost_msats"] > 0
    (body,) = chat_bodies(server)
    assert (body["max_tokens"], body["seed"]) == (9, 4)


def test_tools_go_out_and_tool_calls_come_back_as_parts(tool_server: LoopbackServer) -> None:
    dspy_lm = _lm(tool_server)
    response = dspy_lm(
        lm15.Request(
            model=dspy_lm.model,
            messages=(lm15.Message.user("Weather in Oslo?"),),
            tools=(WEATHER,),
            config=lm15.Config(tool_choice=lm15.ToolChoice(mode="required", allowed=("get_weather",))),
        )
    )
    assert response.finish_reason == "tool_call"
    (call,) = response.tool_calls
    assert (call.id, call.name, call.input) == ("call_1", "get_weather", {"city": "Oslo"})
    (body,) = chat_bodies(tool_server)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_a_conversation_with_tool_results_reaches_the_wire_whole(server: LoopbackServer) -> None:
    dspy_lm = _lm(server)
    conversation = (
        lm15.Message.user("Weather in Oslo?"),
        lm15.Message.assistant([lm15.ToolCallPart("call_1", "get_weather", {"city": "Oslo"})]),
        lm15.Message(role="tool", parts=(lm15.ToolResultPart("call_1", (lm15.TextPart("rain, 4 C"),)),)),
    )
    dspy_lm(lm15.Request(model=dspy_lm.model, messages=conversation, system="Be brief.", tools=(WEATHER,)))
    (body,) = chat_bodies(server)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assert body["messages"][0]["content"] == "Be brief."
    assert json.loads(body["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert (body["messages"][3]["tool_call_id"], body["messages"][3]["content"]) == ("call_1", "rain, 4 C")


def test_a_json_schema_response_format_is_sent_as_structured_output(server: LoopbackServer) -> None:
    dspy_lm = _lm(server)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    fmt = {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}
    dspy_lm(_request(dspy_lm, lm15.Message.user("json please"), response_format=fmt))
    (body,) = chat_bodies(server)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize(
    ("message", "config", "named", "feature"),
    [
        (
            lm15.Message.user([lm15.TextPart("look"), lm15.ImagePart(url="https://example.com/a.png")]),
            {},
            "image part",
            "messages[0].parts[1]",
        ),
        (lm15.Message.user("hi"), {"logprobs": 2}, "Config.logprobs", "config.logprobs"),
        (lm15.Message.user("hi"), {"service_tier": "flex"}, "Config.service_tier", "config.service_tier"),
        (
            lm15.Message.user("hi"),
            {"reasoning": lm15.Reasoning("low", thinking_budget=512)},
            "thinking_budget",
            "config.reasoning",
        ),
        (
            lm15.Message.user("hi"),
            {"tool_choice": lm15.ToolChoice(mode="auto", allowed=("get_weather",))},
            "ToolChoice",
            "config.tool_choice.allowed",
        ),
    ],
)
def test_what_dsrs_cannot_carry_is_refused_by_name_before_sending(
    server: LoopbackServer, message: Any, config: dict[str, Any], named: str, feature: str
) -> None:
    dspy_lm = _lm(server)
    request = lm15.Request(model=dspy_lm.model, messages=(message,), tools=(WEATHER,), config=lm15.Config(**config))
    with pytest.raises(dspy_errors.LMUnsupportedFeatureError, match=named) as info:
        dspy_lm(request)
    assert info.value.feature == feature
    assert chat_bodies(server) == []


def test_reasoning_effort_and_sampling_options_reach_the_wire(server: LoopbackServer) -> None:
    dspy_lm = _lm(server)
    dspy_lm(
        _request(
            dspy_lm,
            lm15.Message.user("hi"),
            reasoning=lm15.Reasoning("low"),
            top_p=0.5,
            presence_penalty=0.1,
            stop=("END",),
        )
    )
    (body,) = chat_bodies(server)
    assert (body["reasoning_effort"], body["top_p"], body["presence_penalty"], body["stop"]) == (
        "low",
        0.5,
        0.1,
        ["END"],
    )


def test_tool_arguments_that_are_not_json_are_a_typed_error() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{city: Oslo"}}
    with LoopbackServer(lambda req: _completion({"content": None, "tool_calls": [call]}, "tool_calls")) as srv:
        dspy_lm = _lm(srv)
        with pytest.raises(dspy_errors.LMError, match=r"get_weather.*not JSON"):
            dspy_lm(_request(dspy_lm, lm15.Message.user("weather?")))


def test_the_engines_are_usable_directly(server: LoopbackServer) -> None:
    lm = dsrs.LM("openai-compatible:loopback-model", base_url=f"{server.url}/v1")
    engine = dsrs_dspy.DsrsEngine(lm)
    request = lm15.Request(model="anything", messages=(lm15.Message.user("[[ ## question ## ]]\nq"),))
    events = list(engine.stream(request))
    assert events[0].type == "start" and events[-1].type == "end"
    text = "".join(e.delta.text for e in events if e.type == "delta" and e.delta.type == "text")
    assert text == engine.complete(request).text
    assert events[-1].usage.output_tokens > 0
    with pytest.raises(TypeError, match=r"dspy\.lm15\.Request"):
        engine.complete({"messages": []})
    engine.close()
