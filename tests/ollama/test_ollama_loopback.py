"""dsrs-ollama end to end through dsrs.LM against a loopback server speaking Ollama's API."""

from __future__ import annotations

import asyncio
import json

import pytest

import dsrs
from dsrs.testing import LoopbackServer, Reply


def last_body(srv: LoopbackServer) -> dict[str, object]:
    body = srv.requests[-1].json()
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("model", ["ollama/llama2", "ollama:llama2", "ollama:llama2:latest"])
def test_model_strings_resolve(model: str) -> None:
    lm = dsrs.LM(model)
    assert lm.provider_name == "ollama"
    assert lm.resolved.model in ("llama2", "llama2:latest")


def test_seed_example_sends_num_ctx(ollama_server: LoopbackServer) -> None:
    # The seed: LM::new("ollama/llama2").with_base_url("http://localhost:11434").with_num_ctx(8192)
    lm = dsrs.LM("ollama/llama2").with_base_url(ollama_server.url).with_num_ctx(8192)
    r = lm.call("why is the sky blue?")
    assert r.text == "why is the sky blue?"
    req = ollama_server.requests[-1]
    assert req.method == "POST" and req.path == "/api/chat"
    assert last_body(ollama_server) == {
        "model": "llama2",
        "messages": [{"role": "user", "content": "why is the sky blue?"}],
        "stream": False,
        "options": {"num_ctx": 8192},
    }


def test_max_tokens_is_num_predict(ollama_server: LoopbackServer) -> None:
    lm = dsrs.LM("ollama:llama2", base_url=ollama_server.url, max_tokens=2, temperature=0, seed=7)
    r = lm.call("one two three four")
    assert last_body(ollama_server)["options"] == {"temperature": 0.0, "num_predict": 2, "seed": 7}
    assert r.text == "one two" and r.finish_reason == "length"


def test_usage_and_zero_cost(ollama_server: LoopbackServer) -> None:
    r = dsrs.LM("ollama:llama2", base_url=ollama_server.url).call("a b c")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 3, 6)
    assert r.usage.cost_msats == 0 and r.usage.cost_usd == 0.0
    assert r.usage.detail["prompt_eval_duration"] == 342546000


def test_ollama_host_env(ollama_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama_server.port}")
    assert dsrs.LM("ollama/llama2").call("hi").text == "hi"
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    assert dsrs.LM("ollama/llama2").call("hi again").text == "hi again"


def test_base_url_wins_over_ollama_host(ollama_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert dsrs.LM("ollama/llama2", base_url=ollama_server.url).call("x").text == "x"


def test_stream_ndjson_with_usage(ollama_server: LoopbackServer) -> None:
    lm = dsrs.LM("ollama:llama2", base_url=ollama_server.url).with_num_ctx(4096)
    stream = lm.stream("the quick brown fox")
    deltas = list(stream)
    assert deltas == ["the", " quick", " brown", " fox"]
    assert stream.response is not None and stream.response.usage.completion_tokens == 4
    assert stream.response.usage.cost_msats == 0
    body = last_body(ollama_server)
    assert body["stream"] is True and body["options"] == {"num_ctx": 4096}


def test_structured_output_with_schema(ollama_server: LoopbackServer) -> None:
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
        "required": ["age", "available"],
    }
    r = dsrs.LM("ollama:llama2", base_url=ollama_server.url).call(
        "Ollama is 22", response_format=dsrs.ResponseFormat(schema=schema)
    )
    assert json.loads(r.text) == {"age": 1, "available": True}
    assert last_body(ollama_server)["format"] == schema


def test_tool_round_trip(ollama_server: LoopbackServer) -> None:
    lm = dsrs.LM("ollama:llama2", base_url=ollama_server.url)
    tool = dsrs.Tool("get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})
    first = lm.call("weather in Paris?", tools=[tool])
    (call,) = first.tool_calls
    assert call.name == "get_weather" and call.parsed_arguments() == {"city": "ok"}
    history = [
        dsrs.Message("user", "weather in Paris?"),
        dsrs.Message("assistant", "", tool_calls=first.tool_calls),
        dsrs.Message("tool", "sunny", tool_call_id=call.id),
    ]
    second = lm.call(history, tools=[tool])
    assert second.text == "tool said: sunny"
    assert last_body(ollama_server)["messages"][-1] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_model_not_pulled_has_pull_hint(ollama_server: LoopbackServer) -> None:
    with pytest.raises(dsrs.InvalidRequestError) as info:
        dsrs.LM("ollama:mistral", base_url=ollama_server.url).call("x")
    assert "ollama pull mistral" in str(info.value) and info.value.status == 404


def test_model_not_pulled_while_streaming(ollama_server: LoopbackServer) -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="ollama pull mistral"):
        list(dsrs.LM("ollama:mistral", base_url=ollama_server.url).stream("x"))


def test_server_down_is_provider_unavailable() -> None:
    with pytest.raises(dsrs.ProviderUnavailableError, match="ollama serve"):
        dsrs.LM("ollama:llama2", base_url="http://127.0.0.1:9", timeout=5).call("x")


def test_error_line_mid_stream(ollama_server: LoopbackServer) -> None:
    ollama_server.push(
        Reply(
            200,
            headers={"content-type": "application/x-ndjson"},
            chunks=[
                '{"model":"llama2","created_at":"2025-10-26T17:21:21.196249Z","message":{"role":"assistant","content":" Yes"},"done":false}\n',
                '{"error":"an error was encountered while running the model"}\n',
            ],
        )
    )
    stream = dsrs.LM("ollama:llama2", base_url=ollama_server.url).stream("x")
    with pytest.raises(dsrs.ProviderUnavailableError, match="while running the model"):
        list(stream)


def test_stream_cut_before_done_is_parse_error(ollama_server: LoopbackServer) -> None:
    ollama_server.push(
        Reply(
            200,
            headers={"content-type": "application/x-ndjson"},
            chunks=['{"model":"llama2","message":{"content":"a"},"done":false}\n'],
        )
    )
    with pytest.raises(dsrs.ResponseParseError):
        list(dsrs.LM("ollama:llama2", base_url=ollama_server.url).stream("x"))


def test_html_from_a_proxy_is_parse_error(ollama_server: LoopbackServer) -> None:
    ollama_server.push(Reply(200, "<html>captive portal</html>", {"content-type": "text/html"}))
    with pytest.raises(dsrs.ResponseParseError, match="HTML"):
        dsrs.LM("ollama:llama2", base_url=ollama_server.url).call("x")


def test_cache_key_includes_num_ctx(ollama_server: LoopbackServer) -> None:
    lm = dsrs.LM("ollama/llama2", base_url=ollama_server.url)
    assert lm.with_num_ctx(2048).build_request("x").cache_key() != lm.with_num_ctx(8192).build_request("x").cache_key()


def probe() -> dsrs.ProbeResult:
    spec = next(s for s in dsrs.providers() if s.name == "ollama")
    return asyncio.run(spec.load().probe(spec, 2.0))


def test_probe_reachable_lists_first_model(ollama_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    result = probe()
    assert result.configured and result.reachable and result.model == "llama3.2:latest"  # the default, pulled
    assert ollama_server.requests[-1].method == "GET" and ollama_server.requests[-1].path == "/api/tags"


def test_probe_no_models_is_not_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsrs_ollama.testing import ollama_wire_server

    with ollama_wire_server(models=()) as srv:
        monkeypatch.setenv("OLLAMA_HOST", srv.url)
        result = probe()
    assert result.configured and result.reachable is False and "ollama pull" in result.detail


def test_probe_server_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    result = probe()
    assert result.configured and result.reachable is False and "127.0.0.1:9" in result.detail


def test_api_key_goes_to_bearer_header_only(ollama_server: LoopbackServer) -> None:
    secret = "sk-ollama-proxy-secret-123456"
    lm = dsrs.LM("ollama:llama2", base_url=ollama_server.url, api_key=secret)
    lm.call("x")
    req = ollama_server.requests[-1]
    assert req.headers["authorization"] == f"Bearer {secret}"
    assert secret not in req.path and secret.encode() not in req.body
    assert secret not in repr(lm.provider())


def test_bad_ollama_host_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "ftp://nowhere")
    with pytest.raises(dsrs.InvalidRequestError, match="OLLAMA_HOST"):
        dsrs.LM("ollama/llama2").call("x")
    result = probe()
    assert result.configured is False and "OLLAMA_HOST" in result.detail


def test_unserializable_option_is_a_clear_error(ollama_server: LoopbackServer) -> None:
    with pytest.raises(dsrs.InvalidRequestError, match="JSON-serializable"):
        dsrs.LM("ollama:llama2", base_url=ollama_server.url, top_k=object()).call("x")
    assert ollama_server.requests == []


def test_probe_picks_a_chat_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsrs_ollama.testing import ollama_wire_server

    with ollama_wire_server(models=("nomic-embed-text:latest", "qwen3:8b")) as srv:
        monkeypatch.setenv("OLLAMA_HOST", srv.url)
        assert probe().model == "qwen3:8b"
    with ollama_wire_server(models=("nomic-embed-text:latest",)) as srv:
        monkeypatch.setenv("OLLAMA_HOST", srv.url)
        result = probe()
    assert result.reachable is False and "embedding" in result.detail


def test_auto_detect_builds_an_ollama_lane(ollama_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    mux = asyncio.run(dsrs.LaneMux.auto_detect(include=["ollama"], timeout=2.0))
    (lane,) = mux.lanes
    assert lane.lm.model == "ollama:llama3.2:latest"
    assert lane.lm.call("hello lane").text == "hello lane"
