"""End to end against the loopback Messages API: tools and the tool turn, extended thinking carried
to the next turn, images and PDFs, prompt-cache usage and cost, the full SSE transcript, structured
output through Predict, LaneMux failover on 429/529, the probe, auto_detect and the model list."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import dsrs
from dsrs.testing import LoopbackServer, Reply, example_instance
from dsrs_anthropic.provider import list_models
from dsrs_anthropic.testing import anthropic_wire_server, error_reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF"

WEATHER = dsrs.Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def lm(server: LoopbackServer, key: str, model: str = "claude-sonnet-4-5", **kw: Any) -> dsrs.LM:
    return dsrs.LM(model, base_url=server.url, api_key=key, **kw)


def test_model_strings_resolve(anthropic_server: LoopbackServer, key: str) -> None:
    for name in ("claude-sonnet-4-5", "anthropic:claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"):
        m = lm(anthropic_server, key, name)
        assert m.provider_name == "anthropic" and m.canonical_model == "anthropic:claude-sonnet-4-5"
    assert lm(anthropic_server, key).call("hello there").text == "hello there"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_then_the_tool_turn(anthropic_server: LoopbackServer, key: str, stream: bool) -> None:
    model = lm(anthropic_server, key)
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        s = model.stream(history, tools=[WEATHER])
        assert list(s) == []
        first = s.response
        assert first is not None
    else:
        first = model.call(history, tools=[WEATHER])
    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert (
        call.name == "get_weather"
        and call.id.startswith("toolu_")
        and json.loads(call.arguments) == example_instance(WEATHER.parameters)
    )
    history += [first.message(), {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}]
    second = model.call(history, tools=[WEATHER])
    assert second.text == "tool said: 18C and sunny" and second.finish_reason == "stop"
    sent = anthropic_server.requests[-1].json()
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_is_reasoning_and_signed_blocks_go_back(
    anthropic_server: LoopbackServer, key: str, stream: bool
) -> None:
    model = lm(anthropic_server, key, max_tokens=8000, thinking=2048)
    history: list[Any] = [{"role": "user", "content": "Weather in Rome?"}]
    if stream:
        s = model.stream(history, tools=[WEATHER])
        chunks = list(s)
        first = s.response
        assert first is not None and chunks == []
    else:
        first = model.call(history, tools=[WEATHER])
    assert first.reasoning == "Let me think step by step about this."
    state = (first.provider_state or {})["anthropic"]
    assert state["thinking"][0]["type"] == "thinking" and state["thinking"][0]["signature"]
    (call,) = first.tool_calls
    history += [first.message(), {"role": "tool", "tool_call_id": call.id, "content": "21C"}]
    assert model.call(history, tools=[WEATHER]).text == "tool said: 21C"
    # The server checks what the real API checks: without the signed block the tool turn is a 400.
    stripped = [history[0], dsrs.Message("assistant", None, tool_calls=first.tool_calls), history[2]]
    with pytest.raises(dsrs.InvalidRequestError, match="Expected `thinking` or `redacted_thinking`"):
        model.call(stripped, tools=[WEATHER])
    forged = dict(state["thinking"][0], thinking="I changed my mind.")
    tampered = dsrs.Message(
        "assistant", None, tool_calls=first.tool_calls, provider_state={"anthropic": {"thinking": [forged]}}
    )
    with pytest.raises(dsrs.InvalidRequestError, match="Invalid `signature`"):
        model.call([history[0], tampered, history[2]], tools=[WEATHER])


def test_streamed_thinking_reaches_the_caller_as_reasoning(anthropic_server: LoopbackServer, key: str) -> None:
    model = lm(anthropic_server, key, max_tokens=8000, thinking=2048)

    async def run() -> tuple[list[str], dsrs.LMResponse | None]:
        s = model.astream("tell me a story")
        return [d async for d in s], s.response

    deltas, response = asyncio.run(run())
    assert response is not None and "".join(deltas) == response.text == "tell me a story"
    assert response.reasoning == "Let me think step by step about this."


def test_images_and_pdfs_reach_the_model(anthropic_server: LoopbackServer, key: str) -> None:
    r = lm(anthropic_server, key).call(
        [
            {
                "role": "user",
                "content": [
                    dsrs.Image.from_bytes(PNG, "image/png"),
                    dsrs.File.from_bytes(PDF, "application/pdf", name="report.pdf"),
                    dsrs.Image.from_url("https://example.com/cat.webp"),
                    "What is in these?",
                ],
            }
        ]
    )
    assert r.text == "I see: image (image/png), document (application/pdf), image (url). What is in these?"
    assert r.usage.prompt_tokens >= 300  # media counts as input


def test_prompt_cache_usage_and_cost_at_their_own_rates(anthropic_server: LoopbackServer, key: str) -> None:
    book = " ".join(["word"] * 2000)
    messages = [
        {"role": "system", "content": [dsrs.Text(book, options={"cache_control": {"type": "ephemeral"}})]},
        {"role": "user", "content": "Summarise the book."},
    ]
    model = lm(anthropic_server, key)
    first = model.call(messages)
    second = model.call(messages)
    u1, u2 = first.usage, second.usage
    assert (u1.cache_write_tokens, u1.cached_tokens) == (2000, 0)
    assert (u2.cache_write_tokens, u2.cached_tokens) == (0, 2000)
    assert u1.prompt_tokens == u2.prompt_tokens == 2003  # all input, cached or not
    assert first.raw_usage is not None and first.raw_usage["cache_creation_input_tokens"] == 2000
    # Sonnet 4.5: input $3, cache writes $3.75, cache reads $0.30, output $15 per 1M tokens.
    out1, out2 = u1.completion_tokens, u2.completion_tokens
    assert u1.cost_usd == pytest.approx((3 * 3.0 + 2000 * 3.75 + out1 * 15.0) / 1e6)
    assert u2.cost_usd == pytest.approx((3 * 3.0 + 2000 * 0.30 + out2 * 15.0) / 1e6)
    assert u2.cost_usd is not None and u1.cost_usd is not None and u2.cost_usd < u1.cost_usd / 5
    total = u1 + u2
    assert total.cache_write_tokens == 2000 and total.cached_tokens == 2000


def test_stop_sequences_and_max_tokens(anthropic_server: LoopbackServer, key: str) -> None:
    r = lm(anthropic_server, key, stop=["STOP"]).call("one two STOP three")
    assert (r.text, r.finish_reason) == ("one two ", "stop")
    r = lm(anthropic_server, key, max_tokens=2).call("one two three four")
    assert (r.text, r.finish_reason) == ("one two", "length")
    assert anthropic_server.requests[-1].json()["max_tokens"] == 2


class Answer(dsrs.Signature):
    """Answer the question."""

    question: str = dsrs.InputField()
    answer: str = dsrs.OutputField()
    confidence: int = dsrs.OutputField()


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-3-5-haiku-20241022"])
def test_predict_with_the_json_adapter_uses_the_schema(anthropic_server: LoopbackServer, key: str, model: str) -> None:
    with dsrs.context(lm(anthropic_server, key, model), adapter=dsrs.JSONAdapter()):
        pred = dsrs.Predict(Answer).forward(question="Capital of France?")
    assert isinstance(pred.answer, str) and isinstance(pred.confidence, int)
    sent = anthropic_server.requests[-1].json()
    if model == "claude-sonnet-4-5":
        assert sent["output_config"]["format"]["type"] == "json_schema"
        assert "answer" in sent["output_config"]["format"]["schema"]["properties"]
    else:  # no native JSON output: a forced tool
        assert sent["tool_choice"]["type"] == "tool" and sent["tools"][0]["input_schema"]["properties"]["answer"]


def test_forced_tool_output_streams_as_text(anthropic_server: LoopbackServer, key: str) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    s = lm(anthropic_server, key, "claude-opus-4-1").stream("x", response_format=dsrs.ResponseFormat(schema=schema))
    deltas = list(s)
    assert s.response is not None and len(deltas) > 1 and "".join(deltas) == s.response.text
    assert json.loads(s.response.text) == example_instance(schema) and s.response.tool_calls == ()


@pytest.mark.parametrize(("status", "etype"), [(429, "rate_limit_error"), (529, "overloaded_error")])
@pytest.mark.parametrize("stream", [False, True])
def test_lanemux_fails_over_on_429_and_529(key: str, status: int, etype: str, stream: bool) -> None:
    with anthropic_wire_server(api_keys=[key]) as a, anthropic_wire_server(api_keys=[key]) as b:
        a.push(*[error_reply(status, etype, "busy", {"retry-after": "30"})] * 5)
        mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01))
        mux.add_lane("primary", lm(a, key)).add_lane("backup", lm(b, key, "claude-haiku-4-5"))
        if stream:
            s = mux.stream("hello lanes")
            assert "".join(s) == "hello lanes"
            response = s.response
        else:
            response = mux.call("hello lanes")
        assert response is not None and response.lane == "backup" and response.text == "hello lanes"
        assert len(a.requests) >= 1 and len(b.requests) == 1


def probe() -> dsrs.ProbeResult:
    spec = next(s for s in dsrs.providers() if s.name == "anthropic")
    return asyncio.run(spec.load().probe(spec, 2.0))


def test_probe(anthropic_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not probe().configured
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    r = probe()
    assert (r.configured, r.reachable, r.detail) == (True, True, "ok")
    assert anthropic_server.requests[-1].path == "/v1/models?limit=1"
    assert anthropic_server.requests[-1].headers["x-api-key"] == key
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-000000000000")
    r = probe()
    assert r.configured and r.reachable is False and "authentication_error" in r.detail
    assert "sk-ant-wrong" not in r.detail
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert probe().reachable is False


def test_auto_detect_builds_a_premium_lane(
    anthropic_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    mux = asyncio.run(dsrs.LaneMux.auto_detect(include=["anthropic"], timeout=2.0))
    (lane,) = mux.lanes
    assert lane.tier == "premium" and lane.lm.model == "anthropic:claude-sonnet-4-5"
    assert lane.lm.call("hello lane").text == "hello lane"
    assert "anthropic" in mux.describe() and "dsrs-anthropic" in mux.describe()


def test_list_models(anthropic_server: LoopbackServer, key: str) -> None:
    ids = asyncio.run(list_models(api_key=key, base_url=anthropic_server.url))
    assert ids[:2] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    with pytest.raises(dsrs.AuthenticationError) as info:
        asyncio.run(list_models(api_key="plainsecretvalue42", base_url=anthropic_server.url))
    assert "plainsecretvalue42" not in str(info.value)


def test_list_models_follows_every_page(key: str) -> None:
    many = [f"claude-test-{i:04d}" for i in range(2500)]
    with anthropic_wire_server(models=many, api_keys=[key]) as srv:
        ids = asyncio.run(list_models(api_key=key, base_url=srv.url))
        paths = [r.path for r in srv.requests]
    assert ids == many
    assert paths == [
        "/v1/models?limit=1000",
        "/v1/models?limit=1000&after_id=claude-test-0999",
        "/v1/models?limit=1000&after_id=claude-test-1999",
    ]


def test_list_models_rejects_a_body_that_is_not_a_list(key: str) -> None:
    with LoopbackServer(lambda req: Reply(200, {"models": "nope"})) as srv, pytest.raises(dsrs.ResponseParseError):
        asyncio.run(list_models(api_key=key, base_url=srv.url))


def test_providers_lists_it_with_its_distribution() -> None:
    spec = next(s for s in dsrs.providers() if s.name == "anthropic")
    assert spec.distribution == "dsrs-anthropic" and spec.tier == "premium"


def test_install_hint_when_the_package_is_missing() -> None:
    from dsrs.testing import isolated_plugins

    with isolated_plugins():
        for model in ("claude-3-5-sonnet", "anthropic:claude-sonnet-4-5"):
            with pytest.raises(dsrs.UnknownModelError) as info:
                dsrs.LM(model).resolved  # noqa: B018
            assert info.value.install_hint == "dsrs-anthropic" and "pip install dsrs-anthropic" in str(info.value)


def test_a_server_answering_unknown_routes_is_typed(key: str) -> None:
    html = Reply(404, "<html>no</html>", {"content-type": "text/html"})
    with LoopbackServer(lambda req: html) as srv, pytest.raises(dsrs.InvalidRequestError):
        lm(srv, key).call("x")


def test_dsrs_providers_cli_lists_it(anthropic_server: LoopbackServer, key: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": anthropic_server.url}
    out = subprocess.run(
        [sys.executable, "-m", "dsrs", "providers"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("anthropic "))
    assert "premium" in line and "dsrs-anthropic" in line and "yes" in line
    assert key not in out.stdout and key not in out.stderr


def test_dsrs_ask_cli_reaches_claude(anthropic_server: LoopbackServer, key: str, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_BASE_URL": anthropic_server.url,
        "DSRS_CACHE_DIR": str(tmp_path),
        "DSRS_CONFIG_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-m", "dsrs", "ask", "hello from the cli", "-m", "claude-3-5-haiku-20241022"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "hello from the cli" in out.stdout and key not in out.stdout + out.stderr


def test_a_cache_hit_keeps_the_signed_thinking(
    anthropic_server: LoopbackServer, key: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path))
    model = lm(anthropic_server, key, max_tokens=8000, thinking=2048).with_cache(True)
    first = model.call("cache me", tools=[WEATHER])
    hit = model.call("cache me", tools=[WEATHER])
    assert hit.cache_hit and len(anthropic_server.requests) == 1
    assert hit.provider_state == first.provider_state and hit.tool_calls == first.tool_calls
    history = ["cache me", hit.message(), {"role": "tool", "tool_call_id": hit.tool_calls[0].id, "content": "9C"}]
    assert model.call([{"role": "user", "content": history[0]}, *history[1:]], tools=[WEATHER]).text == "tool said: 9C"
