"""Batches: input order, bounded concurrency, budgets that stop cleanly (the rest marked, not lost),
resumption from the cache, and BatchError keeping every outcome."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import pytest

import dsrs
from dsrs import _cache
from dsrs.testing import Reply, openai_chat_reply, openai_wire_server


class Echo(dsrs.Signature):
    """Repeat the text."""

    text: str = dsrs.InputField()
    answer: str = dsrs.OutputField()


def _chat_answer(req: Any) -> Reply:
    found = re.search(r"row \d+", json.dumps(req.json()["messages"]))
    text = found.group(0) if found else ""
    return Reply(
        200,
        {
            "id": "c",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"[[ ## answer ## ]]\n{text}\n\n[[ ## completed ## ]]"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        },
    )


def test_results_come_back_in_input_order_with_bounded_concurrency() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def slow(req: Any) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        reply = openai_chat_reply(req)
        reply.delay = 0.02
        with lock:
            in_flight -= 1
        return reply

    with openai_wire_server() as srv:
        srv.handler = slow
        prompts = [f"item {i}" for i in range(40)]
        out = dsrs.LM("m", base_url=srv.url).batch(prompts, concurrency=4, progress=False)
    assert [r.text for r in out] == prompts
    assert peak <= 4


def test_an_exhausted_budget_stops_the_batch_and_marks_the_rest() -> None:
    # Each answer costs 30 msats (10 prompt tokens at 1 + 10 completion tokens at 2) and reserves 40:
    # three fit in 100, the fourth does not.
    mux = dsrs.LaneMux(budget_msats=100).add_lane("only", dsrs.LM("fake:echo"), reserve_msats=40)
    prompts = [f"p{i}" + " word" * 9 for i in range(10)]
    out = mux.batch(prompts, concurrency=1, progress=False, return_exceptions=True)
    assert len(out) == 10
    answered = [r for r in out if isinstance(r, dsrs.LMResponse)]
    refused = [r for r in out if isinstance(r, dsrs.BudgetExceededError)]
    assert len(answered) == 3 and len(refused) == 7
    assert [r.text for r in answered] == prompts[:3]  # in order, nothing lost
    assert all(getattr(r, "not_run", False) for r in refused[1:])  # after the first refusal none started
    assert mux.budget_status()["global"].spent == 90


def test_batch_error_keeps_every_outcome() -> None:
    with openai_wire_server() as srv:
        srv.handler = lambda req: (
            Reply(400, {"error": {"message": "bad", "type": "invalid_request_error"}})
            if "bad" in str(req.json()["messages"])
            else openai_chat_reply(req)
        )
        with pytest.raises(dsrs.BatchError) as info:
            dsrs.LM("m", base_url=srv.url).batch(["ok 1", "bad", "ok 2"], progress=False)
    err = info.value
    assert [type(r).__name__ for r in err.results] == ["LMResponse", "InvalidRequestError", "LMResponse"]
    assert [i for i, _ in err.errors] == [1]


def test_predict_batch_resumes_from_the_cache() -> None:
    previous = _cache.get_cache()
    _cache.set_cache(_cache.MemoryCache())
    try:
        with openai_wire_server() as srv:
            srv.handler = _chat_answer
            predict = dsrs.Predict(Echo, lm=dsrs.LM("m", base_url=srv.url, cache=True))
            rows = [{"text": f"row {i}"} for i in range(6)]
            first = predict.batch(rows[:4], progress=False)
            assert [p.answer for p in first] == ["row 0", "row 1", "row 2", "row 3"]
            sent = len(srv.requests)
            again = predict.batch(rows, progress=False)
            assert [p.answer for p in again] == [f"row {i}" for i in range(6)]
            assert len(srv.requests) == sent + 2  # only the two new rows reached the server
            assert all(p.lm_usage.cache_hit for p in again[:4])
    finally:
        _cache.set_cache(previous)


def test_abatch_inside_a_running_loop_and_bad_arguments() -> None:
    async def run() -> list[Any]:
        return await dsrs.LM("fake:echo").abatch(["a", "b"], progress=False)

    assert [r.text for r in asyncio.run(run())] == ["a", "b"]
    with pytest.raises(dsrs.InvalidValueError, match="concurrency"):
        dsrs.LM("fake:echo").batch(["a"], concurrency=0)
    with pytest.raises(dsrs.InvalidTypeError, match=r"inputs\[1\]"):
        dsrs.Predict(Echo, lm=dsrs.LM("fake:echo")).batch([{"text": "x"}, "not a dict"])  # type: ignore[list-item]
