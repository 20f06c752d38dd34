"""The gptoss provider against the real llama-server: SmolLM2 (meaningful answers, streaming,
json_schema through a signature) and the tiny random model (fast protocol checks, Harmony split)."""

from __future__ import annotations

import json
from typing import Literal

import pytest

import dsrs
from dsrs.testing import ProviderConformance
from dsrs_gptoss import gbnf, testing
from dsrs_gptoss.server import LlamaServer

pytestmark = pytest.mark.integration


class TestGptOssConformance(ProviderConformance):
    provider_name = "gptoss"
    supports_response_format = True
    supports_tools = False
    priced = True  # known price: 0

    @pytest.fixture
    def lm(self, smol_server: LlamaServer) -> dsrs.LM:
        # A 135M model loops at temperature 0; a repeat penalty lets it close its JSON strings.
        return dsrs.LM(
            "gptoss:smollm2", base_url=smol_server.base_url, max_tokens=48, temperature=0.0, repeat_penalty=1.3
        )

    @pytest.fixture
    def unreachable_lm(self) -> dsrs.LM:
        return dsrs.LM("gptoss:smollm2", base_url="http://127.0.0.1:9", auto_start=False)


# --- SmolLM2: a real instruct model ---------------------------------------------------------------


def test_meaningful_answer(smol_server: LlamaServer) -> None:
    lm = dsrs.LM("gptoss:smollm2", base_url=smol_server.base_url, max_tokens=16, temperature=0.0)
    r = lm.call("What is the capital of France? Answer with one word.")
    assert "paris" in r.text.lower()
    assert r.usage.cost_msats == 0 and r.usage.cost_usd == 0.0
    detail = r.usage.detail
    assert detail["wall_seconds"] > 0 and detail["tokens_per_second"] > 0
    assert detail["timings"]["predicted_n"] == r.usage.completion_tokens


def test_streaming_deltas_usage_and_ttft(smol_server: LlamaServer) -> None:
    lm = dsrs.LM("gptoss:smollm2", base_url=smol_server.base_url, max_tokens=40, temperature=0.0)
    stream = lm.stream("Count from 1 to 10, separated by spaces.")
    deltas = list(stream)
    assert len(deltas) > 3
    assert stream.response is not None and "".join(deltas) == stream.response.text
    assert "1" in stream.response.text and "5" in stream.response.text
    usage = stream.response.usage
    assert usage.completion_tokens == len(deltas) or usage.completion_tokens > 3
    assert 0 < usage.detail["ttft_seconds"] <= usage.detail["wall_seconds"]
    assert usage.cost_msats == 0


class CityFacts(dsrs.Signature):
    """Give facts about a city."""

    city: str = dsrs.InputField()
    country: str = dsrs.OutputField(desc="the country the city is in")
    is_capital: bool = dsrs.OutputField()
    continent: Literal["Europe", "Asia", "Africa", "America", "Oceania"] = dsrs.OutputField()


@pytest.mark.parametrize("structured", ["json_schema", "grammar"])
def test_json_schema_through_a_signature(smol_server: LlamaServer, structured: str) -> None:
    lm = dsrs.LM("gptoss:smollm2", base_url=smol_server.base_url, max_tokens=80, temperature=0.0, structured=structured)
    adapter = dsrs.JSONAdapter()
    with dsrs.context(lm=lm, adapter=adapter):
        pred = dsrs.Predict(CityFacts)(city="Paris")
    assert isinstance(pred.country, str) and pred.country
    assert isinstance(pred.is_capital, bool)
    assert pred.continent in ("Europe", "Asia", "Africa", "America", "Oceania")
    assert pred.lm_usage.cost_msats == 0
    # The schema came from the signature object, not from prompt text.
    rf = adapter.response_format(CityFacts)
    assert rf.schema == CityFacts.output_json_schema()
    gbnf.schema_to_gbnf(rf.schema)  # and our converter handles what signatures produce


# --- tiny random model: protocol -----------------------------------------------------------------


def test_max_tokens_is_honoured(tiny_server: LlamaServer) -> None:
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=5, temperature=1.0, seed=3)
    r = lm.call("hello")
    assert r.usage.completion_tokens <= 5
    assert r.finish_reason in ("length", "stop")


def test_default_max_tokens_bounds_generation(tiny_server: LlamaServer) -> None:
    from dsrs_gptoss.provider import DEFAULT_MAX_TOKENS

    r = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, temperature=1.0, seed=5).call("go")
    assert 0 < r.usage.completion_tokens <= DEFAULT_MAX_TOKENS


def test_seed_makes_sampling_repeatable(tiny_server: LlamaServer) -> None:
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=12, temperature=1.0, seed=42)
    assert lm.call("same").text == lm.call("same").text


def test_stop_sequence_is_sent_and_honoured(tiny_server: LlamaServer) -> None:
    grammar = 'root ::= "abc" "STOP" "def"'
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=20, grammar=grammar, stop=["STOP"])
    r = lm.call("x")
    assert r.text == "abc" and r.finish_reason == "stop"


def test_tiny_stream(tiny_server: LlamaServer) -> None:
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=10, temperature=1.0, seed=9)
    stream = lm.stream("hi")
    deltas = list(stream)
    assert stream.response is not None and "".join(deltas) == stream.response.text
    assert stream.response.usage.completion_tokens == 10


def test_harmony_output_puts_reasoning_aside(tiny_server: LlamaServer) -> None:
    """Raw Harmony text from the server (forced here with a grammar) is split by channel."""
    grammar = (
        'root ::= "<|channel|>analysis<|message|>" [a-z ]{3,20} "<|end|>" '
        '"<|start|>assistant<|channel|>final<|message|>" "ANSWER" [a-z]{0,5} "<|return|>"'
    )
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=200, grammar=grammar, seed=1)
    r = lm.call("x")
    assert r.text.startswith("ANSWER") and "<|" not in r.text
    assert r.reasoning and "<|" not in r.reasoning and "ANSWER" not in r.reasoning


def test_response_format_json_schema_on_tiny(tiny_server: LlamaServer) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}, "tag": {"enum": ["a", "b"]}},
        "required": ["n", "tag"],
        "additionalProperties": False,
    }
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=60, temperature=1.0, seed=2)
    r = lm.call("json", response_format=dsrs.ResponseFormat(name="x", schema=schema))
    data = json.loads(r.text)
    assert 1 <= data["n"] <= 9 and data["tag"] in ("a", "b")


# --- gpt-oss path: Harmony template, server-side channel split, reasoning_content --------------------

HARMONY_GRAMMAR = (
    'root ::= "<|channel|>analysis<|message|>" [a-z ]{3,12} '
    '"<|end|><|start|>assistant<|channel|>final<|message|>ANSWER" [a-z]{0,3}'
)


def test_reasoning_content_goes_to_reasoning_not_the_answer(harmony_server: LlamaServer) -> None:
    lm = dsrs.LM(
        "gpt-oss:gpt-oss-20b",
        base_url=harmony_server.base_url,
        max_tokens=120,
        grammar=HARMONY_GRAMMAR,
        logit_bias=testing.TINY_CONTROL_TOKEN_BAN,
    )
    r = lm.call("What is 2 + 2?")
    assert r.text.startswith("ANSWER") and "<|" not in r.text
    assert r.reasoning and r.reasoning.strip() and "ANSWER" not in r.reasoning and "<|" not in r.reasoning


def test_streamed_reasoning_is_kept_apart(harmony_server: LlamaServer) -> None:
    lm = dsrs.LM(
        "gpt-oss:gpt-oss-20b",
        base_url=harmony_server.base_url,
        max_tokens=120,
        grammar=HARMONY_GRAMMAR,
        logit_bias=testing.TINY_CONTROL_TOKEN_BAN,
    )
    stream = lm.stream("What is 2 + 2?")
    text = "".join(stream)
    assert stream.response is not None
    assert text == stream.response.text and text.startswith("ANSWER")
    assert stream.reasoning and stream.reasoning == stream.response.reasoning and "ANSWER" not in stream.reasoning


def test_raw_harmony_mode_renders_the_prompt_and_parses_channels(tiny_server: LlamaServer) -> None:
    """harmony=True: we render Harmony, post to /v1/completions, and split the answer by channel."""
    import urllib.request

    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["ok", "n"],
        "additionalProperties": False,
    }
    lm = dsrs.LM(
        "gpt-oss:gpt-oss-20b",
        base_url=tiny_server.base_url,
        harmony=True,
        max_tokens=300,
        temperature=1.0,
        seed=4,
        logit_bias=testing.TINY_CONTROL_TOKEN_BAN,
    )
    messages = [dsrs.Message("system", "Answer in JSON."), dsrs.Message("user", "Is 7 prime?")]
    rf = dsrs.ResponseFormat(name="verdict", schema=schema)
    r = lm.call(messages, response_format=rf)
    data = json.loads(r.text)
    assert isinstance(data["ok"], bool) and 0 <= data["n"] <= 99
    assert "<|" not in r.text and (r.reasoning is None or "<|" not in r.reasoning)
    # The server evaluated exactly our rendered Harmony prompt.
    provider = lm.provider()
    from dsrs_gptoss.provider import GptOssProvider

    assert isinstance(provider, GptOssProvider)
    prompt = provider.build_harmony_body(lm.build_request(messages, response_format=rf))["prompt"]
    assert '# Response Formats\n\n## verdict\n\n{"type":"object"' in prompt
    assert prompt.startswith("<|start|>system<|message|>") and prompt.endswith("<|start|>assistant")
    req = urllib.request.Request(
        tiny_server.base_url + "/tokenize",
        data=json.dumps({"content": prompt, "add_special": True}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        n_tokens = len(json.loads(resp.read())["tokens"])
    assert r.usage.prompt_tokens == n_tokens
    stream = lm.stream(messages, response_format=rf)
    assert json.loads(stream.text()) == data  # same seed, same answer; one chunk in raw mode


def test_many_streams_in_a_row_on_one_event_loop(tiny_server: LlamaServer) -> None:
    """Regression: with aiohttp, every second stream on a reused connection failed ("Can not write
    request body") after llama-server's chunked SSE answer; streams now use a connection each."""
    import asyncio

    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=3, temperature=0.0)

    async def run() -> int:
        done = 0
        for _ in range(8):
            stream = lm.astream("hi")
            async for _delta in stream:
                pass
            assert stream.response is not None
            done += 1
            await lm.acall("and a plain call in between")
        return done

    assert asyncio.run(run()) == 8


def test_streamed_raw_harmony_is_split_as_it_arrives(tiny_server: LlamaServer) -> None:
    """A server that does not parse Harmony (no gpt-oss template) streams raw channels; the deltas
    carry only the answer, the reasoning goes to ``stream.reasoning``."""
    grammar = (
        'root ::= "<|channel|>analysis<|message|>" [a-z ]{3,20} "<|end|>" '
        '"<|start|>assistant<|channel|>final<|message|>" "ANSWER" [a-z]{0,5} "<|return|>"'
    )
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=200, grammar=grammar, seed=1)
    stream = lm.stream("x")
    deltas = list(stream)
    assert stream.response is not None
    assert "".join(deltas) == stream.response.text and stream.response.text.startswith("ANSWER")
    assert all("<|" not in d for d in deltas)
    assert stream.reasoning and stream.reasoning == stream.response.reasoning and "<|" not in stream.reasoning
