"""Calls, streams, parallel tool calls, usage and cost over loopback; probe; model-name resolution."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from typing import Any

import pytest

import dsrs
from dsrs import LmUsage, ResponseFormat, Tool
from dsrs.testing import Reply
from dsrs_openai.chat import usage_from_raw
from dsrs_openai.pricing import cost_for, price_of

from .conftest import SECRET

WEATHER = Tool(
    "get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
)
TIME = Tool("get_time", "Time", {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]})


@pytest.mark.parametrize("model", ["gpt-4o-mini", "codex-mini-latest", "openai-responses:gpt-4o-mini"])
@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_are_all_returned(server: Any, model: str, stream: bool) -> None:
    lm = dsrs.LM(model, base_url=server.url, api_key=SECRET)
    if stream:
        s = lm.stream("weather and time?", tools=[WEATHER, TIME])
        assert list(s) == []
        assert s.response is not None
        response = s.response
    else:
        response = lm.call("weather and time?", tools=[WEATHER, TIME])
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("call_0", "get_weather", {"city": "x"}),
        ("call_1", "get_time", {"tz": "x"}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage.completion_tokens == 10


@pytest.mark.parametrize(
    "model", ["gpt-4o-mini", "codex-mini-latest", "groq:llama-3.1-8b-instant", "mistral:mistral-small-latest"]
)
def test_stream_deltas_then_usage_and_cost(server: Any, model: str) -> None:
    lm = dsrs.LM(model, base_url=server.url, api_key=SECRET)
    s = lm.stream("one two three four")
    deltas = list(s)
    assert deltas == ["one", " two", " three", " four"]
    assert s.response is not None and s.response.text == "one two three four"
    u = s.response.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (4, 4, 8)
    if model.startswith("mistral"):
        assert u.cost_usd is not None  # usage came without stream_options
    assert u.cost_msats is not None and u.cost_msats > 0


def test_gpt_4o_mini_cost_from_the_table(server: Any) -> None:
    r = dsrs.LM("gpt-4o-mini", base_url=server.url, api_key=SECRET).call("a b c d")
    assert r.usage.prompt_tokens == 4 and r.usage.completion_tokens == 4
    assert r.usage.cost_usd == pytest.approx((4 * 0.15 + 4 * 0.6) / 1e6)


def test_unknown_model_costs_none(server: Any) -> None:
    r = dsrs.LM("openai:my-finetune-xyz", base_url=server.url, api_key=SECRET).call("hi")
    assert r.usage.cost_usd is None and r.usage.cost_msats is None


def test_cached_tokens_billed_once_at_the_cached_rate() -> None:
    usage = LmUsage.from_tokens(1000, 100, cached_tokens=800)
    cost = cost_for("openai:gpt-4o", usage)
    assert cost is not None and cost.usd == pytest.approx((200 * 2.5 + 800 * 1.25 + 100 * 10.0) / 1e6)
    no_discount = cost_for("openai:gpt-4-turbo", usage)
    assert no_discount is not None and no_discount.usd == pytest.approx((1000 * 10.0 + 100 * 30.0) / 1e6)


def test_price_lookup_rules() -> None:
    assert price_of("openai", "gpt-4o-2024-08-06") == price_of("openai", "gpt-4o")
    assert price_of("openai", "gpt-4o-mini") != price_of("openai", "gpt-4o")
    assert price_of("openai-responses", "gpt-4o") == price_of("openai", "gpt-4o")
    assert price_of("codex", "gpt-5-codex") is not None
    assert price_of("groq", "llama-3.1-8b-instant") is not None
    assert price_of("groq", "gpt-4o") is None
    assert cost_for("nope:gpt-4o", LmUsage.from_tokens(1, 1)) is None


def test_usage_variants_of_the_vendors() -> None:
    # DeepSeek: cache hits reported as prompt_cache_hit_tokens
    ds = usage_from_raw(
        {
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "total_tokens": 110,
            "prompt_cache_hit_tokens": 60,
            "prompt_cache_miss_tokens": 40,
        },
        LmUsage(),
    )
    assert (ds.prompt_tokens, ds.cached_tokens, ds.completion_tokens) == (100, 60, 10)
    # xAI: reasoning tokens outside completion_tokens (total = prompt + completion + reasoning)
    xai = usage_from_raw(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 35,
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
        LmUsage(),
    )
    assert (xai.completion_tokens, xai.reasoning_tokens, xai.total_tokens) == (25, 20, 35)
    # OpenAI: reasoning tokens already inside completion_tokens
    oa = usage_from_raw(
        {
            "prompt_tokens": 10,
            "completion_tokens": 25,
            "total_tokens": 35,
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
        LmUsage(),
    )
    assert (oa.completion_tokens, oa.reasoning_tokens) == (25, 20)
    # OpenRouter: the charged cost comes with the usage
    orr = usage_from_raw({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.00042}, LmUsage())
    assert orr.cost_usd == pytest.approx(0.00042) and orr.cost_msats is not None


def test_openrouter_cost_reaches_the_caller(server: Any) -> None:
    body = {
        "id": "gen-1",
        "model": "openai/gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "cost": 0.0001},
    }
    server.push(Reply(200, body, headers={"content-type": "application/json"}))
    r = dsrs.LM("openrouter/openai/gpt-4o-mini", base_url=server.url, api_key=SECRET).call("hi")
    assert r.usage.cost_usd == pytest.approx(0.0001)


def test_responses_usage_details(server: Any) -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-5-codex",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
            {
                "type": "message",
                "id": "m1",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "done", "annotations": []}],
            },
        ],
        "usage": {
            "input_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 900},
            "output_tokens": 300,
            "output_tokens_details": {"reasoning_tokens": 250},
            "total_tokens": 1300,
        },
    }
    server.push(Reply(200, body, headers={"content-type": "application/json"}))
    r = dsrs.LM("openai:gpt-5-codex", base_url=server.url, api_key=SECRET).call("hi")
    assert r.text == "done" and r.reasoning == "thinking"
    u = r.usage
    assert (u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens, u.total_tokens) == (
        1000,
        900,
        300,
        250,
        1300,
    )
    assert u.cost_usd == pytest.approx((100 * 1.25 + 900 * 0.125 + 300 * 10.0) / 1e6)
    assert r.raw_usage is not None and r.raw_usage["input_tokens_details"]["cached_tokens"] == 900


def test_responses_max_output_tokens_incomplete_is_length(server: Any) -> None:
    r = dsrs.LM("codex-mini-latest", base_url=server.url, api_key=SECRET, max_tokens=2).call("one two three four")
    assert r.finish_reason == "length"


@pytest.mark.parametrize("model", ["gpt-4o", "openai-responses:gpt-4o"])
def test_json_schema_answers_parse(server: Any, model: str) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["answer", "n"],
    }
    r = dsrs.LM(model, base_url=server.url, api_key=SECRET).call(
        "Paris", response_format=ResponseFormat(name="r", schema=schema)
    )
    assert json.loads(r.text) == {"answer": "Paris", "n": 1}


def test_bare_names_resolve_to_their_providers() -> None:
    for name in ("gpt-4-turbo", "gpt-4o", "o1", "o3-mini", "o4-mini", "chatgpt-4o-latest", "codex-3-opus"):
        assert dsrs.LM(name).provider_name == "openai", name
    assert dsrs.LM("groq/mixtral-8x7b").provider_name == "groq"
    assert dsrs.LM("groq/mixtral-8x7b").resolved.model == "mixtral-8x7b"
    assert dsrs.LM("openai-responses:gpt-4o").provider_name == "openai-responses"
    assert dsrs.LM("openrouter/meta-llama/llama-3-70b").resolved.model == "meta-llama/llama-3-70b"
    # open-weight gpt-oss names are not OpenAI's API (dsrs-gptoss serves them locally)
    openai_spec = next(s for s in dsrs.providers() if s.name == "openai")
    assert not any(fnmatch.fnmatchcase("gpt-oss-20b", pat) for pat in openai_spec.patterns)


def test_probe_configured_by_key_and_reachable_by_models(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsrs_openai.provider import OpenAIProvider
    from dsrs_openai.vendors import GroqProvider

    spec = next(s for s in dsrs.providers() if s.name == "openai")
    assert asyncio.run(OpenAIProvider.probe(spec, 2.0)).configured is False
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    result = asyncio.run(OpenAIProvider.probe(spec, 2.0))
    # the lane uses the spec's default model, not whatever /models happens to list first
    assert (result.configured, result.reachable, result.model) == (True, True, None)
    assert server.requests[-1].method == "GET" and server.requests[-1].path == "/v1/models"
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    server.push(
        Reply(401, {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}})
    )
    rejected = asyncio.run(OpenAIProvider.probe(spec, 2.0))
    assert rejected.reachable is False and SECRET not in rejected.detail
    gspec = next(s for s in dsrs.providers() if s.name == "groq")
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    monkeypatch.setenv("GROQ_BASE_URL", "http://127.0.0.1:9/openai/v1")
    down = asyncio.run(GroqProvider.probe(gspec, 2.0))
    assert (down.configured, down.reachable) == (True, False)


def test_keys_never_in_repr_cache_key_or_errors(server: Any) -> None:
    lm = dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET)
    assert SECRET not in repr(lm) and SECRET not in repr(lm.provider())
    assert SECRET not in lm.build_request("x").cache_key()
    server.push(
        Reply(
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {SECRET}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
    )
    with pytest.raises(dsrs.errors.AuthenticationError) as info:
        lm.call("x")
    assert SECRET not in str(info.value) and SECRET not in (info.value.body or "")


def test_groq_stream_usage_from_x_groq(server: Any) -> None:
    # Groq's last chunk carries usage under x_groq (https://console.groq.com/docs/api-reference)
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "llama-3.1-8b-instant"}
    events = [
        "data: "
        + json.dumps(
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}
        )
        + "\n\n",
        "data: "
        + json.dumps(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "x_groq": {
                    "id": "req_01",
                    "usage": {
                        "queue_time": 0.01,
                        "prompt_tokens": 12,
                        "prompt_time": 0.001,
                        "completion_tokens": 1,
                        "completion_time": 0.001,
                        "total_tokens": 13,
                        "total_time": 0.002,
                    },
                },
            }
        )
        + "\n\n",
        "data: [DONE]\n\n",
    ]
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=events))
    s = dsrs.LM("groq:llama-3.1-8b-instant", base_url=server.url, api_key=SECRET).stream("hi")
    assert list(s) == ["Hi"]
    assert s.response is not None
    u = s.response.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (12, 1, 13)
    assert u.cost_usd == pytest.approx((12 * 0.05 + 1 * 0.08) / 1e6)


# Structured-output refusals (https://platform.openai.com/docs/guides/structured-outputs#refusals):
# message.content is null and message.refusal holds the explanation; streams send delta.refusal.
REFUSAL = "I'm sorry, I cannot assist with that request."


def test_chat_refusal_is_a_content_filter_error(server: Any) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": None, "refusal": REFUSAL}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }
    server.push(Reply(200, body, headers={"content-type": "application/json"}))
    with pytest.raises(dsrs.errors.ContentFilterError, match="cannot assist"):
        dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET).call(
            "x", response_format=ResponseFormat(schema={"type": "object"})
        )


def test_streamed_refusal_is_a_content_filter_error(server: Any) -> None:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o"}
    events = [
        "data: "
        + json.dumps(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": None, "refusal": ""}, "finish_reason": None}
                ],
            }
        )
        + "\n\n",
        "data: "
        + json.dumps({**base, "choices": [{"index": 0, "delta": {"refusal": REFUSAL}, "finish_reason": None}]})
        + "\n\n",
        "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n",
        "data: [DONE]\n\n",
    ]
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=events))
    with pytest.raises(dsrs.errors.ContentFilterError, match="cannot assist"):
        list(dsrs.LM("gpt-4o", base_url=server.url, api_key=SECRET).stream("x"))


def test_responses_stream_reasoning_summary_deltas(server: Any) -> None:
    def ev(obj: dict[str, Any]) -> str:
        return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"

    final = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "o4-mini",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Think. Done."}]},
            {
                "type": "message",
                "id": "m1",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "42", "annotations": []}],
            },
        ],
        "usage": {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 28},
            "total_tokens": 35,
        },
    }
    events = [
        ev(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "delta": "Think.",
            }
        ),
        ev(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "delta": " Done.",
            }
        ),
        ev(
            {
                "type": "response.output_text.delta",
                "item_id": "m1",
                "output_index": 1,
                "content_index": 0,
                "delta": "42",
            }
        ),
        ev({"type": "response.completed", "response": final}),
    ]
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=events))
    s = dsrs.LM("openai-responses:o4-mini", base_url=server.url, api_key=SECRET).stream("6*7?")
    assert list(s) == ["42"]
    assert s.reasoning == "Think. Done."
    assert s.response is not None and s.response.reasoning == "Think. Done."
    assert (s.response.usage.completion_tokens, s.response.usage.reasoning_tokens) == (30, 28)
