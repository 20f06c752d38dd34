"""End to end against the project's real llama-server (OpenAI-compatible), started by dsrs-gptoss.

Chat, streaming (usage included), json_schema and the Responses API through dsrs-openai's providers,
with the server pointed at by ``base_url``. Skipped, with the reason, when dsrs-gptoss, its cached
llama-server (``dsrs-gptoss install``) or a model is missing — these tests never build or download.
The model is SmolLM2-135M-Instruct when installed (real answers), else the tiny random GGUF (the
wire and grammar-constrained JSON still hold; the text is gibberish).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dsrs
from dsrs import ResponseFormat

gptoss_testing = pytest.importorskip("dsrs_gptoss.testing", reason="dsrs-gptoss not installed (llama-server tests)")
from dsrs_gptoss import install  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _user_default_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # llama.cpp's server may close a keep-alive connection right after a streamed answer; the next
    # request on it fails with "Server disconnected" (a ProviderUnavailableError). A plain LM's
    # default retries absorb that, so these end-to-end tests run with the defaults users get
    # instead of the suite's DSRS_RETRIES=0.
    monkeypatch.delenv("DSRS_RETRIES", raising=False)


def _model() -> Path:
    real = install.cached_default_model()
    if real is not None:
        return real
    pytest.importorskip("gguf", reason="gguf not installed: cannot write the tiny test model")
    return Path(gptoss_testing.tiny_gguf())


@pytest.fixture(scope="module")
def llama() -> Iterator[Any]:
    from dsrs_gptoss.server import LlamaServerError, find_engine

    try:
        engine = find_engine()  # a llama-server binary, else the prebuilt xllamacpp engine
    except LlamaServerError as exc:
        pytest.skip(f"no llama.cpp engine: {exc.message}")
    with gptoss_testing.running_server(_model(), engine=engine, alias="local-model") as srv:
        yield srv


@pytest.fixture
def lm(llama: Any) -> dsrs.LM:
    # the openai provider with a custom base_url needs no key; the model name is the server's alias
    return dsrs.LM("openai:local-model", base_url=llama.base_url, max_tokens=24, temperature=0.0, seed=1)


def test_chat_with_usage(lm: dsrs.LM) -> None:
    r = lm.call("Say hello.")
    assert r.provider == "openai" and isinstance(r.text, str)
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.cost_usd is None  # a local model has no price in the table


def test_stream_has_deltas_and_usage(lm: dsrs.LM) -> None:
    s = lm.stream("Count to five.")
    deltas = list(s)
    assert deltas and s.response is not None and "".join(deltas) == s.response.text
    assert s.response.usage.completion_tokens > 0 and s.response.usage.prompt_tokens > 0


def test_json_schema_is_enforced(lm: dsrs.LM) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 12}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    r = lm.with_max_tokens(64).call(
        "Capital of France? Reply in JSON.", response_format=ResponseFormat(name="reply", schema=schema)
    )
    data = json.loads(r.text)
    assert set(data) == {"answer"} and isinstance(data["answer"], str)


def test_groq_provider_against_the_same_server(llama: Any) -> None:
    # a vendor provider is the same wire with its own quirks (max_completion_tokens here)
    r = dsrs.LM("groq:local-model", base_url=llama.base_url, api_key="gsk_loopback_0123456789", max_tokens=8).call("hi")
    assert r.provider == "groq" and r.usage.completion_tokens > 0


def test_responses_api_against_llama_server(llama: Any) -> None:
    lm = dsrs.LM("openai-responses:local-model", base_url=llama.base_url, max_tokens=16)
    r = lm.call("Say hello.")
    assert isinstance(r.text, str) and r.usage.prompt_tokens > 0
    s = lm.stream("Say hello.")
    deltas = list(s)
    assert s.response is not None and "".join(deltas) == s.response.text
