"""dsrs-google end to end through dsrs.LM against a loopback server speaking the Gemini wire."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import dsrs
from dsrs.testing import LoopbackServer, Reply


def last_body(srv: LoopbackServer) -> Any:
    return srv.requests[-1].json()


@pytest.mark.parametrize(
    ("model", "native"),
    [
        ("gemini-pro", "gemini-pro"),  # the seed's bare name
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("google:gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini:gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini/gemini-1.5-flash", "gemini-1.5-flash"),
    ],
)
def test_model_strings(model: str, native: str, gemini_server: LoopbackServer, key: str) -> None:
    lm = dsrs.LM(model, base_url=gemini_server.url, api_key=key)
    assert lm.provider_name == "google" and lm.resolved.model == native
    assert lm.call("hello").text == "hello"
    assert gemini_server.requests[-1].path == f"/v1beta/models/{native}:generateContent"


def test_key_is_a_header_never_in_the_url(gemini_server: LoopbackServer, key: str) -> None:
    dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).call("x")
    req = gemini_server.requests[-1]
    assert req.headers["x-goog-api-key"] == key
    assert key not in req.path and "key=" not in req.path
    assert key.encode() not in req.body


@pytest.mark.parametrize("env", ["GOOGLE_API_KEY", "GEMINI_API_KEY"])
def test_key_from_env(env: str, gemini_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env, key)
    monkeypatch.setenv("GEMINI_BASE_URL", gemini_server.url)
    assert dsrs.LM("gemini-2.5-flash").call("from env").text == "from env"


def test_google_api_key_wins(gemini_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", key)
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-some-other-key-000000000000000")
    dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url).call("x")
    assert gemini_server.requests[-1].headers["x-goog-api-key"] == key


def test_no_key_fails_before_any_request(gemini_server: LoopbackServer) -> None:
    with pytest.raises(dsrs.AuthenticationError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url).call("x")
    assert gemini_server.requests == []


def test_invalid_key_is_authentication_error(gemini_server: LoopbackServer) -> None:
    bad = "AIzaSyWRONG-0000000000000000000000000"
    with pytest.raises(dsrs.AuthenticationError) as info:
        dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=bad).call("x")
    assert info.value.status == 400 and info.value.code == "INVALID_ARGUMENT"
    assert bad not in str(info.value) and bad not in (info.value.body or "")


def test_full_request_golden(gemini_server: LoopbackServer, key: str) -> None:
    lm = dsrs.LM(
        "gemini-2.5-flash",
        base_url=gemini_server.url,
        api_key=key,
        temperature=0.2,
        max_tokens=64,
        seed=7,
        stop=["END"],
    )
    lm = lm.with_options(top_p=0.95, thinking_budget=0)
    r = lm.call([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "one two three"}])
    assert r.text == "one two three" and r.finish_reason == "stop"
    assert last_body(gemini_server) == {
        "contents": [{"role": "user", "parts": [{"text": "one two three"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {
            "temperature": 0.2,
            "maxOutputTokens": 64,
            "seed": 7,
            "stopSequences": ["END"],
            "topP": 0.95,
            "thinkingConfig": {"thinkingBudget": 0},
        },
    }


def test_usage_and_cost(gemini_server: LoopbackServer, key: str) -> None:
    r = dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).call("a b c d")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (4, 4, 8)
    assert r.usage.cost_usd == pytest.approx((4 * 0.30 + 4 * 2.50) / 1e6)
    assert isinstance(r.usage.cost_msats, int) and r.usage.cost_msats > 0


def test_unknown_price_is_none(key: str) -> None:
    from dsrs_google.testing import gemini_wire_server

    with gemini_wire_server(models=["gemini-exp-1206"], api_keys=[key]) as srv:
        r = dsrs.LM("gemini-exp-1206", base_url=srv.url, api_key=key).call("x")
    assert r.usage.cost_usd is None and r.usage.cost_msats is None


def test_thoughts_are_reasoning_with_usage(gemini_server: LoopbackServer, key: str) -> None:
    lm = dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key, include_thoughts=True)
    r = lm.call("hi")
    assert r.text == "hi" and r.reasoning == "Let me think about that."
    assert r.usage.reasoning_tokens == 5 and r.usage.completion_tokens == 1 + 5


def test_stream_sse_with_usage(gemini_server: LoopbackServer, key: str) -> None:
    lm = dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key, include_thoughts=True)
    stream = lm.stream("the quick brown fox")
    deltas = list(stream)
    assert deltas == ["the", " quick", " brown", " fox"]
    assert stream.reasoning == "Let me think about that."
    assert stream.response is not None
    assert (stream.response.usage.prompt_tokens, stream.response.usage.completion_tokens) == (4, 4 + 5)
    assert stream.response.usage.cost_usd is not None
    req = gemini_server.requests[-1]
    assert req.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert req.headers["accept"] == "text/event-stream"


def test_structured_output(gemini_server: LoopbackServer, key: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city"],
    }
    r = dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).call(
        "x", response_format=dsrs.ResponseFormat(schema=schema)
    )
    assert json.loads(r.text) == {"city": "ok", "population": 1}
    assert last_body(gemini_server)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_structured_output_on_gemini_pro_uses_response_schema(gemini_server: LoopbackServer, key: str) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    r = dsrs.LM("gemini-pro", base_url=gemini_server.url, api_key=key).call(
        "x", response_format=dsrs.ResponseFormat(schema=schema)
    )
    assert json.loads(r.text) == {"ok": True}
    assert last_body(gemini_server)["generationConfig"]["responseSchema"] == {
        "type": "OBJECT",
        "properties": {"ok": {"type": "BOOLEAN"}},
        "propertyOrdering": ["ok"],
    }


def test_function_calling_round_trip_returns_the_signature_and_id(key: str) -> None:
    from dsrs_google.testing import GeminiWire

    calls: list[Any] = []

    def handler(req: Any) -> Reply:
        body = req.json()
        calls.append(body)
        if len(calls) == 1:  # a thinking model's signed function call
            part = {
                "functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "U0lHTkFUVVJF",
            }
            candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}
            usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
            return Reply(200, {"candidates": [candidate], "usageMetadata": usage})
        return GeminiWire(api_keys=[key])(req)

    tool = dsrs.Tool("get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})
    with LoopbackServer(handler) as srv:
        lm = dsrs.LM("gemini-2.5-flash", base_url=srv.url, api_key=key)
        first = lm.call("Weather in Paris?", tools=[tool])
        (call,) = first.tool_calls
        assert call.parsed_arguments() == {"city": "Paris"} and first.finish_reason == "tool_calls"
        assert call.id == "fc-7"  # Gemini's own id is kept
        history = [
            dsrs.Message("user", "Weather in Paris?"),
            first.message(),  # carries the signature (provider_state), no side store
            dsrs.Message("tool", '{"temp_c": 21}', tool_call_id=call.id),
        ]
        second = lm.with_temperature(0.5).call(history, tools=[tool])  # a with_* copy: a new provider instance
    assert second.text == 'tool said: {"temp_c": 21}'
    assert calls[1]["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "U0lHTkFUVVJF",
            }
        ],
    }
    assert calls[1]["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"id": "fc-7", "name": "get_weather", "response": {"temp_c": 21}}}],
    }


def test_unknown_model(gemini_server: LoopbackServer, key: str) -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="unknown model 'gemini-9'") as info:
        dsrs.LM("gemini-9", base_url=gemini_server.url, api_key=key).call("x")
    assert info.value.status == 404 and info.value.code == "NOT_FOUND"


def test_rate_limit_over_the_wire(gemini_server: LoopbackServer, key: str) -> None:
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    gemini_server.push(Reply(429, body))
    with pytest.raises(dsrs.RateLimitError) as info:
        dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).call("x")
    assert info.value.retry_after == 37.0


def test_errors_while_streaming(gemini_server: LoopbackServer, key: str) -> None:
    lm = dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key)
    gemini_server.push(
        Reply(503, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
    )
    with pytest.raises(dsrs.ProviderUnavailableError, match="overloaded"):
        list(lm.stream("x"))
    event = {"candidates": [{"content": {"parts": [{"text": "Par"}], "role": "model"}}]}
    gemini_server.push(
        Reply(200, headers={"content-type": "text/event-stream"}, chunks=[f"data: {json.dumps(event)}\r\n\r\n"])
    )
    with pytest.raises(dsrs.ResponseParseError, match="cut short"):
        list(lm.stream("x"))
    error_event = {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}
    gemini_server.push(
        Reply(
            200,
            headers={"content-type": "text/event-stream"},
            chunks=[f"data: {json.dumps(event)}\r\n\r\n", f"data: {json.dumps(error_event)}\r\n\r\n"],
        )
    )
    with pytest.raises(dsrs.ProviderUnavailableError, match="internal error"):
        list(lm.stream("x"))


def test_prompt_blocked_over_the_wire(gemini_server: LoopbackServer, key: str) -> None:
    gemini_server.push(
        Reply(
            200,
            {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
            },
        )
    )
    with pytest.raises(dsrs.ContentFilterError, match="PROHIBITED_CONTENT"):
        dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).call("x")


def test_html_body_is_parse_error(gemini_server: LoopbackServer, key: str) -> None:
    gemini_server.push(Reply(200, "<html>captive portal</html>", {"content-type": "text/html"}))
    with pytest.raises(dsrs.ResponseParseError, match="HTML"):
        dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).call("x")


def test_unknown_option_fails_before_any_request(gemini_server: LoopbackServer, key: str) -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="num_ctx"):
        dsrs.LM("gemini-2.5-flash", base_url=gemini_server.url, api_key=key).with_num_ctx(8192).call("x")
    assert gemini_server.requests == []


def probe() -> dsrs.ProbeResult:
    spec = next(s for s in dsrs.providers() if s.name == "google")
    return asyncio.run(spec.load().probe(spec, 2.0))


def test_probe_without_key_is_not_configured() -> None:
    result = probe()
    assert result.configured is False and "GOOGLE_API_KEY" in result.detail


def test_probe_reachable(gemini_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", key)
    monkeypatch.setenv("GEMINI_BASE_URL", gemini_server.url)
    result = probe()
    assert result.configured and result.reachable
    assert result.model is None  # the lane uses the spec's default chat model, not the list's first entry
    req = gemini_server.requests[-1]
    assert req.method == "GET" and req.path == "/v1beta/models?pageSize=1" and req.headers["x-goog-api-key"] == key


def test_probe_rejected_key(gemini_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSyWRONG-0000000000000000000000000")
    monkeypatch.setenv("GEMINI_BASE_URL", gemini_server.url)
    result = probe()
    assert result.configured and result.reachable is False and "INVALID_ARGUMENT" in result.detail


def test_probe_unreachable(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", key)
    monkeypatch.setenv("GEMINI_BASE_URL", "http://127.0.0.1:9")
    result = probe()
    assert result.configured and result.reachable is False


def test_signatures_travel_with_the_message_not_the_process(key: str) -> None:
    # A history rebuilt without provider_state sends no signature: nothing is remembered globally.
    signed = {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}
    bodies: list[Any] = []

    def handler(req: Any) -> Reply:
        bodies.append(req.json())
        candidate = {"content": {"role": "model", "parts": [signed]}, "finishReason": "STOP"}
        return Reply(200, {"candidates": [candidate]})

    with LoopbackServer(handler) as srv:
        lm = dsrs.LM("gemini-2.5-flash", base_url=srv.url, api_key=key)
        first = lm.call("go")
        bare = dsrs.Message("assistant", None, tool_calls=first.tool_calls)
        lm.call([dsrs.Message("user", "go"), bare, dsrs.Message("tool", "ok", tool_call_id=first.tool_calls[0].id)])
    assert first.provider_state == {"gemini": {"thought_signatures": {first.tool_calls[0].id: "c2ln"}}}
    assert "thoughtSignature" not in bodies[1]["contents"][1]["parts"][0]


def test_auto_detect_builds_a_gemini_lane(
    gemini_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", key)
    monkeypatch.setenv("GEMINI_BASE_URL", gemini_server.url)
    mux = asyncio.run(dsrs.LaneMux.auto_detect(include=["google"], timeout=2.0))
    (lane,) = mux.lanes
    assert lane.tier == "balanced" and lane.lm.model == "google:gemini-2.5-flash"
    assert lane.lm.call("hello lane").text == "hello lane"
