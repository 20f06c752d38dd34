"""dsrs.Predict end to end: configure/context, sync and async twins, adapters, lanes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import dsrs
from dsrs import _settings as settings
from dsrs.testing import LoopbackServer, RecordedRequest, Reply


class QA(dsrs.Signature):
    """Answer briefly."""

    question: str = dsrs.InputField()
    answer: str = dsrs.OutputField()
    score: int = dsrs.OutputField()


def chat_answer(answer: str, score: int) -> str:
    return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## score ## ]]\n{score}\n\n[[ ## completed ## ]]"


def scripted(*texts: str, **options: Any) -> dsrs.LM:
    return dsrs.LM("fake:script", responses=list(texts), **options)


def completion(text: str) -> Reply:
    return Reply(
        200,
        {
            "id": "c1",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        },
    )


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    settings.reset()
    yield
    settings.reset()


def test_forward_sync_gives_typed_outputs_and_usage() -> None:
    dsrs.configure(scripted(chat_answer("Paris", 9)))
    pred = dsrs.Predict(QA).forward(question="Capital of France?")
    assert isinstance(pred, dsrs.Prediction)
    assert (pred.answer, pred.score) == ("Paris", 9)
    assert pred["answer"] == "Paris"
    assert pred.to_dict() == {"answer": "Paris", "score": 9}
    assert pred.lane is None
    assert pred.lm_usage.calls == 1
    assert pred.lm_usage.total_tokens > 0
    assert pred.lm_usage.cost_msats == pred.lm_usage.prompt_tokens + 2 * pred.lm_usage.completion_tokens
    assert "answer='Paris'" in repr(pred)


async def test_aforward_and_sync_twin_inside_a_running_loop() -> None:
    dsrs.configure(scripted(chat_answer("a", 1)))
    pred = await dsrs.Predict(QA).aforward(question="q")
    assert pred.score == 1
    # The sync twin works in a running loop and sees this context's settings.
    with dsrs.context(lm=scripted(chat_answer("b", 2))):
        assert dsrs.Predict(QA).forward(question="q").score == 2


async def test_concurrent_tasks_use_their_own_lm() -> None:
    async def ask(n: int) -> int:
        with dsrs.context(lm=scripted(chat_answer("x", n), delay=0.01)):
            await asyncio.sleep(0)
            pred = await dsrs.Predict(QA).aforward(question="q")
            return int(pred.score)

    assert await asyncio.gather(*(ask(n) for n in range(20))) == list(range(20))


def test_context_restores_on_exit_and_configure_with_adapter() -> None:
    outer = scripted(chat_answer("o", 0))
    dsrs.configure_with_adapter(outer, dsrs.ChatAdapter())
    with dsrs.context(lm=scripted(chat_answer("i", 1))):
        assert dsrs.Predict(QA).forward(question="q").answer == "i"
    assert dsrs.Predict(QA).forward(question="q").answer == "o"
    assert isinstance(settings.current().adapter, dsrs.ChatAdapter)


def test_not_configured_is_a_clear_error() -> None:
    with pytest.raises(dsrs.NotConfiguredError, match=r"dsrs\.configure"):
        dsrs.Predict(QA).forward(question="q")
    with pytest.raises(TypeError, match=r"dsrs\.LM or dsrs\.LaneMux"):
        dsrs.configure("gpt-4o")  # type: ignore[arg-type]


def test_parse_failure_on_a_plain_lm_names_the_field() -> None:
    dsrs.configure(scripted("[[ ## answer ## ]]\nParis"))
    with pytest.raises(dsrs.AdapterParseError, match="`score`") as info:
        dsrs.Predict(QA).forward(question="q")
    assert info.value.provider == "fake"


def test_predict_options_and_string_signature() -> None:
    lm = scripted("one two three four five")
    pred = dsrs.Predict("question -> answer", lm=lm, max_tokens=3).forward(question="hello world")
    # max_tokens overrides the LM's setting (the fake provider cuts its answer); a single output
    # takes the bare text.
    assert pred.answer == "one two three"
    assert pred.response is not None and pred.response.finish_reason == "length"
    mux = dsrs.LaneMux().add_lane("a", lm)
    assert dsrs.Predict("question -> answer", lm=mux, max_tokens=2).forward(question="x").answer == "one two"


def test_json_adapter_sends_response_format_to_a_server_that_supports_it() -> None:
    def handler(req: RecordedRequest) -> Reply:
        return completion(json.dumps({"answer": "Paris", "score": 7}))

    with LoopbackServer(handler) as srv:
        dsrs.configure(dsrs.LM("m", base_url=srv.url), adapter=dsrs.JSONAdapter())
        pred = dsrs.Predict(QA).forward(question="Capital?")
        body = srv.requests[-1].json()
    assert (pred.answer, pred.score) == ("Paris", 7)
    rf = body["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["schema"]["required"] == ["answer", "score"]
    assert rf["json_schema"]["name"] == "QA"


def test_json_adapter_asks_in_the_prompt_where_response_format_is_unsupported() -> None:
    # The fake provider does not support response_format: the request must not carry one.
    lm = scripted(json.dumps({"answer": "x", "score": 3}))
    request = lm.build_request("x")
    assert request.response_format is None
    pred = dsrs.Predict(QA, lm=lm, adapter=dsrs.JSONAdapter()).forward(question="q")
    assert pred.score == 3


def test_forward_with_lane_by_name_and_tier() -> None:
    mux = (
        dsrs.LaneMux()
        .add_lane("premium", scripted(chat_answer("p", 1)), tier="premium")
        .add_lane("local", scripted(chat_answer("l", 2)), tier="local")
    )
    dsrs.configure(mux)
    qa = dsrs.Predict(QA)
    assert qa.forward(question="q").lane == "premium"
    assert qa.forward_with_lane("local", question="q").answer == "l"
    assert qa.forward_with_lane("premium", question="q").lane == "premium"
    with pytest.raises(dsrs.UnknownLaneError, match="lanes: premium, local"):
        qa.forward_with_lane("nope", question="q")


async def test_aforward_with_lane_needs_a_mux() -> None:
    dsrs.configure(scripted(chat_answer("a", 1)))
    with pytest.raises(dsrs.SignatureError, match=r"needs a dsrs\.LaneMux"):
        await dsrs.Predict(QA).aforward_with_lane("premium", question="q")


async def test_unparseable_answer_fails_over_and_counts_both_calls() -> None:
    mux = (
        dsrs.LaneMux()
        .add_lane("sloppy", scripted("I think Paris."))
        .add_lane("careful", scripted(chat_answer("Paris", 5)))
    )
    pred = await dsrs.Predict(QA, lm=mux).aforward(question="q")
    assert (pred.answer, pred.lane) == ("Paris", "careful")
    assert pred.lm_usage.calls == 2
    assert mux.usage_by_lane["sloppy"].calls == 1


async def test_all_lanes_unparseable_lists_each_lane() -> None:
    mux = dsrs.LaneMux().add_lane("a", scripted("nope")).add_lane("b", scripted("nope either"))
    with pytest.raises(dsrs.AllLanesFailedError) as info:
        await dsrs.Predict(QA, lm=mux).aforward(question="q")
    assert set(info.value.errors) == {"a", "b"}
    assert all(isinstance(e, dsrs.AdapterParseError) for e in info.value.errors.values())


def test_predict_through_a_mux_from_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    mux = dsrs.LaneMux().add_lane("only", scripted(chat_answer("t", 4)))
    dsrs.configure(mux)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        preds = list(pool.map(lambda _: dsrs.Predict(QA).forward(question="q"), range(40)))
    assert {p.score for p in preds} == {4}
    assert mux.usage.calls == 40
    assert time.perf_counter() - t0 < 30


def test_json_adapter_through_a_mux_sends_response_format_only_where_supported() -> None:
    def handler(req: RecordedRequest) -> Reply:
        return completion(json.dumps({"answer": "ok", "score": 1}))

    with LoopbackServer(handler) as srv:
        mux = (
            dsrs.LaneMux()
            .add_lane("fake", dsrs.LM("fake:echo", fail="quota"))
            .add_lane("server", dsrs.LM("m", base_url=srv.url))
        )
        pred = dsrs.Predict(QA, lm=mux, adapter=dsrs.JSONAdapter()).forward(question="q")
        body = srv.requests[-1].json()
    assert (pred.answer, pred.lane) == ("ok", "server")
    assert body["response_format"]["type"] == "json_schema"
    assert mux.lane("fake").supports_response_format is False
    assert mux.lane("server").supports_response_format is True
