"""dspy.Predict and dspy.ChainOfThought on real DSPy, answered by dsrs over a loopback OpenAI server."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import dspy
import pytest

import dsrs
import dsrs_dspy
from dsrs.testing import LoopbackServer, Reply

from .conftest import COMPLETION_MSATS, PROMPT_MSATS, chat_bodies, words


def test_predict_answers_through_dsrs(lm: dsrs.LM, server: LoopbackServer) -> None:
    with dspy.context(lm=dsrs_dspy.LM(lm)):
        result = dspy.Predict("question -> answer")(question="Capital of France?")
    assert result.answer == "answer to Capital of France?"
    (body,) = chat_bodies(server)
    assert body["model"] == "loopback-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Capital of France?" in body["messages"][1]["content"]


def test_chain_of_thought_gets_reasoning_and_answer(lm: dsrs.LM, server: LoopbackServer) -> None:
    with dspy.context(lm=dsrs_dspy.LM(lm)):
        result = dspy.ChainOfThought("question -> answer")(question="Why is the sky blue?")
    assert result.reasoning == "thinking about Why is the sky blue?"
    assert result.answer == "answer to Why is the sky blue?"
    (body,) = chat_bodies(server)
    assert "`reasoning`" in body["messages"][0]["content"]


def test_json_adapter_sends_the_signature_schema_as_structured_output(lm: dsrs.LM, server: LoopbackServer) -> None:
    with dspy.context(lm=dsrs_dspy.LM(lm), adapter=dspy.JSONAdapter()):
        result = dspy.ChainOfThought("question -> answer")(question="Structured?")
    assert (result.reasoning, result.answer) == ("thinking about Structured?", "answer to Structured?")
    (body,) = chat_bodies(server)
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert set(fmt["json_schema"]["schema"]["properties"]) == {"reasoning", "answer"}


def test_async_predict_and_chain_of_thought(lm: dsrs.LM, server: LoopbackServer) -> None:
    async def main() -> tuple[str, str]:
        with dspy.context(lm=dsrs_dspy.LM(lm)):
            a = await dspy.Predict("question -> answer").acall(question="one")
            b = await dspy.ChainOfThought("question -> answer").acall(question="two")
        return a.answer, b.answer

    assert asyncio.run(main()) == ("answer to one", "answer to two")
    assert len(chat_bodies(server)) == 2


def test_usage_and_cost_are_reported_back_to_dspy(lm: dsrs.LM, server: LoopbackServer) -> None:
    dspy_lm = dsrs_dspy.LM(lm)
    with dspy.context(lm=dspy_lm, track_usage=True):
        result = dspy.Predict("question -> answer")(question="How much?")
    (body,) = chat_bodies(server)
    prompt = sum(words(m["content"]) for m in body["messages"])  # what the server reported
    completion = words(dspy_lm.history[-1]["outputs"][0])
    usage = result.get_lm_usage()[dspy_lm.model]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
    entry = dspy_lm.history[-1]
    msats = prompt * PROMPT_MSATS + completion * COMPLETION_MSATS
    assert entry["dsrs"]["cost_msats"] == msats
    assert entry["cost"] == pytest.approx(dsrs.Cost(msats=msats).resolved().usd)
    assert entry["cost_details"] == {"kind": "dsrs", "currency": "USD", "msats": msats}
    assert entry["dsrs"]["provider"] == "openai-compatible"


def test_dspy_settings_reach_the_wire_over_the_dsrs_lm_settings(server: LoopbackServer) -> None:
    from .conftest import loopback_lm

    base = loopback_lm(server, temperature=0.9, max_tokens=999)
    with dspy.context(lm=dsrs_dspy.LM(base, temperature=0.25, max_tokens=77, stop=["\n\n\n"])):
        dspy.Predict("question -> answer")(question="q")
    with dspy.context(lm=dsrs_dspy.LM(base)):
        dspy.Predict("question -> answer")(question="q2")
    first, second = chat_bodies(server)
    assert (first["temperature"], first["max_tokens"], first["stop"]) == (0.25, 77, ["\n\n\n"])
    assert (second["temperature"], second["max_tokens"]) == (0.9, 999)  # the dsrs LM's own settings


def test_no_deprecation_warning_on_any_path(lm: dsrs.LM) -> None:
    dspy_lm = dsrs_dspy.LM(lm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dspy.context(lm=dspy_lm):
            dspy.Predict("question -> answer")(question="a")
            dspy.ChainOfThought("question -> answer")(question="b")
            asyncio.run(dspy.Predict("question -> answer").acall(question="c"))
        dspy_lm("plain prompt")
    deprecations = [w for w in caught if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert deprecations == [], [str(w.message) for w in deprecations]


def test_model_name_and_target_are_exposed(lm: dsrs.LM) -> None:
    dspy_lm = dsrs_dspy.LM(lm)
    assert dspy_lm.model == "dsrs:openai-compatible:loopback-model"
    assert dspy_lm.dsrs_target is lm
    assert isinstance(dspy_lm, dspy.LM)
    assert dsrs_dspy.LM(lm, model="mine").model == "mine"


def test_a_wrong_target_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"dsrs\.LM or dsrs\.LaneMux, got str"):
        dsrs_dspy.LM("openai/gpt-4o")  # type: ignore[arg-type]


def test_parallel_threads_share_one_bridge(lm: dsrs.LM, server: LoopbackServer) -> None:
    """dspy.Parallel runs the sync engine from many threads at once; answers keep their order."""
    dspy_lm = dsrs_dspy.LM(lm, temperature=0.5)
    predict = dspy.Predict("question -> answer")
    questions = [f"question number {i}" for i in range(24)]
    with dspy.context(lm=dspy_lm):
        results = dspy.Parallel(num_threads=8, disable_progress_bar=True)(
            [(predict, dspy.Example(question=q).with_inputs("question")) for q in questions]
        )
    assert [r.answer for r in results] == [f"answer to {q}" for q in questions]
    assert len(chat_bodies(server)) == 24
    assert {b["temperature"] for b in chat_bodies(server)} == {0.5}


def test_sync_streaming(lm: dsrs.LM, server: LoopbackServer) -> None:
    program = dspy.streamify(
        dspy.Predict("question -> answer"),
        stream_listeners=[dspy.streaming.StreamListener(signature_field_name="answer")],
        async_streaming=False,
    )
    pieces: list[str] = []
    final = None
    with dspy.context(lm=dsrs_dspy.LM(lm)):
        for item in program(question="sync stream"):
            if isinstance(item, dspy.streaming.StreamResponse):
                pieces.append(item.chunk)
            elif isinstance(item, dspy.Prediction):
                final = item
    assert final is not None and final.answer == "answer to sync stream"
    assert "".join(pieces).strip() == "answer to sync stream" and len(pieces) > 1
    assert chat_bodies(server)[0]["stream"] is True


def test_an_empty_answer_is_an_empty_text_not_a_crash(server: LoopbackServer) -> None:
    from dspy import lm15

    from .conftest import loopback_lm

    server.push(
        Reply(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "model": "loopback-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3},
            },
            headers={"content-type": "application/json"},
        )
    )
    dspy_lm = dsrs_dspy.LM(loopback_lm(server))
    response = dspy_lm(lm15.Request(model=dspy_lm.model, messages=(lm15.Message.user("hi"),)))
    assert (response.text, response.finish_reason, response.usage.output_tokens) == ("", "length", 0)


def test_copies_share_the_dsrs_target(lm: dsrs.LM, server: LoopbackServer) -> None:
    """DSPy optimizers copy LMs (``lm.copy(rollout_id=...)``) and deep-copy programs; every copy
    must still send through the same dsrs LM or LaneMux (one budget, one set of lane states)."""
    import copy

    mux = dsrs.LaneMux(budget_msats=100_000).add_lane("only", lm)
    dspy_lm = dsrs_dspy.LM(mux)
    program = dspy.ChainOfThought("question -> answer")
    program.set_lm(dspy_lm)
    copies = [dspy_lm.copy(rollout_id=1, temperature=1.0), copy.deepcopy(dspy_lm)]
    deep_program = program.deepcopy()
    assert all(c.dsrs_target is mux for c in copies)
    (copied_lm,) = {id(p.lm): p.lm for p in deep_program.predictors()}.values()
    assert copied_lm.dsrs_target is mux
    copies[0]("first")
    deep_program(question="second")
    assert len(chat_bodies(server)) == 2
    assert mux.usage.calls == 2 and mux.usage.cost_msats is not None and mux.usage.cost_msats > 0


def test_evaluate_and_an_optimizer_run_on_the_bridge(lm: dsrs.LM, server: LoopbackServer) -> None:
    """dspy.Evaluate (threads) and BootstrapFewShot (deep copies, teacher runs) through one LaneMux."""
    mux = dsrs.LaneMux().add_lane("only", lm)
    examples = [dspy.Example(question=f"q{i}", answer=f"answer to q{i}").with_inputs("question") for i in range(6)]

    def exact(example: Any, prediction: Any, trace: Any = None) -> bool:
        return bool(example.answer == prediction.answer)

    with dspy.context(lm=dsrs_dspy.LM(mux)):
        score = dspy.Evaluate(devset=examples, metric=exact, num_threads=3, display_progress=False)(
            dspy.Predict("question -> answer")
        )
        compiled = dspy.BootstrapFewShot(metric=exact, max_bootstrapped_demos=2, max_labeled_demos=0).compile(
            dspy.Predict("question -> answer"), trainset=examples[:3]
        )
        result = compiled(question="new one")
    assert float(score.score if hasattr(score, "score") else score) == 100.0
    assert result.answer == "answer to new one"
    assert len(compiled.demos) == 2
    assert mux.usage.calls == len(chat_bodies(server))
