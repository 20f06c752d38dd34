"""The one call path: retries on a plain LM, usage checked before billing, a paid answer never lost,
budgets that send the cap they reserved, and a usage record for every attempt."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import dsrs
from dsrs import _cache
from dsrs.plugins import hookimpl, register_plugin, unregister_plugin
from dsrs.testing import Reply, openai_chat_reply, openai_wire_server
from dsrs.types import UsageRecord


def _chat(text: str = "ok", **usage: Any) -> dict[str, Any]:
    u = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, **usage}
    return {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": u,
    }


# --- retries on a plain LM --------------------------------------------------------------------


def test_a_plain_lm_retries_a_5xx_then_answers() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(500, {"error": {"message": "boom", "type": "server_error"}}))
        srv.push(Reply(503, {"error": {"message": "busy", "type": "server_error"}}))
        lm = dsrs.LM("m", base_url=srv.url, retries=dsrs.RetryPolicy(max_attempts=3, base_delay=0.01))
        assert lm.call("hello").text == "hello"
        assert len(srv.requests) == 3


def test_retries_stop_at_the_policy_and_raise_the_last_error() -> None:
    with openai_wire_server() as srv:
        for _ in range(3):
            srv.push(Reply(500, {"error": {"message": "boom", "type": "server_error"}}))
        lm = dsrs.LM("m", base_url=srv.url, retries=1)  # one retry = two attempts
        with pytest.raises(dsrs.ProviderUnavailableError):
            lm.call("hello")
        assert len(srv.requests) == 2


def test_a_4xx_is_never_retried() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(400, {"error": {"message": "bad", "type": "invalid_request_error"}}))
        lm = dsrs.LM("m", base_url=srv.url, retries=3)
        with pytest.raises(dsrs.InvalidRequestError):
            lm.call("hello")
        assert len(srv.requests) == 1


def test_a_long_retry_after_is_not_waited_for() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, {"retry-after": "120"}))
        lm = dsrs.LM("m", base_url=srv.url, retries=3)
        with pytest.raises(dsrs.RateLimitError) as info:
            lm.call("hello")
        assert info.value.retry_after == 120
        assert len(srv.requests) == 1


def test_the_default_retries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSRS_RETRIES", raising=False)
    assert dsrs.LM("fake:echo").retries.max_attempts == 3
    monkeypatch.setenv("DSRS_RETRIES", "0")
    assert dsrs.LM("fake:echo").retries.max_attempts == 1
    monkeypatch.setenv("DSRS_RETRIES", "lots")
    with pytest.raises(dsrs.InvalidValueError, match="DSRS_RETRIES"):
        dsrs.LM("fake:echo")


def test_lanes_are_retried_by_the_mux_only() -> None:
    with openai_wire_server() as srv:
        for _ in range(5):
            srv.push(Reply(500, {"error": {"message": "boom", "type": "server_error"}}))
        lane = dsrs.LM("m", base_url=srv.url, retries=5)  # ignored inside the mux
        mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=2, base_delay=0.0), failover=dsrs.FailoverPolicy())
        mux.add_lane("only", lane)
        with pytest.raises(dsrs.AllLanesFailedError):
            mux.call("hello")
        assert len(srv.requests) == 2


# --- usage is checked before it is billed ------------------------------------------------------


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5},
        {"completion_tokens": 10**15, "total_tokens": 10**15},
        {"prompt_tokens": 2**70},
        {"prompt_tokens": "many"},
    ],
    ids=["negative", "10^15", "over-64-bit", "not-a-number"],
)
def test_lying_usage_is_a_response_parse_error(usage: dict[str, Any]) -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(200, _chat(**usage)))
        with pytest.raises(dsrs.ResponseParseError, match="usage"):
            dsrs.LM("m", base_url=srv.url).call("hello")


def test_more_completion_tokens_than_the_cap_is_refused() -> None:
    with openai_wire_server() as srv:
        srv.push(Reply(200, _chat(completion_tokens=5000, total_tokens=5003)))
        with pytest.raises(dsrs.ResponseParseError, match="capped at 100"):
            dsrs.LM("m", base_url=srv.url, max_tokens=100).call("hello")


def test_a_lying_lane_is_a_lane_fault_the_mux_moves_past() -> None:
    with openai_wire_server() as bad, openai_wire_server() as good:
        bad.handler = lambda req: Reply(200, _chat(prompt_tokens=-1))
        mux = (
            dsrs.LaneMux()
            .add_lane("liar", dsrs.LM("m", base_url=bad.url))
            .add_lane("honest", dsrs.LM("m", base_url=good.url))
        )
        r = mux.call("hello")
        assert r.lane == "honest" and r.text == "hello"


# --- nothing lost after a paid answer ------------------------------------------------------------


class _BrokenCache(_cache.MemoryCache):
    async def aset(self, key: str, response: dsrs.LMResponse) -> None:
        raise RecursionError("maximum recursion depth exceeded while encoding a JSON object")


def test_a_failed_cache_write_is_a_warning_and_the_answer_is_returned() -> None:
    deep: Any = 1
    for _ in range(400):
        deep = {"d": deep}
    previous = _cache.get_cache()
    _cache.set_cache(_BrokenCache())
    try:
        with openai_wire_server() as srv:
            srv.handler = lambda req: Reply(200, _chat(prompt_tokens_details=deep))
            lm = dsrs.LM("fake:echo", cache=True)
            mux = dsrs.LaneMux(budget_msats=10_000).add_lane("only", lm)
            with pytest.warns(_cache.CacheWarning, match="not cached"):
                r = mux.call("a paid answer")
        assert r.text == "a paid answer"
        assert mux.usage.calls == 1 and mux.usage.cost_msats and mux.usage.cost_msats > 0
        assert mux.budget_status()["global"].spent == mux.usage.cost_msats
    finally:
        _cache.set_cache(previous)


def test_a_cached_answer_carries_the_lane_that_asks_for_it() -> None:
    # The LM sets the lane on the answer it returns (the mux does not copy it); the cache then holds
    # an answer with a lane, and a hit must report who asked now, not who asked first.
    lm = dsrs.LM("fake:echo", cache=True)
    mux = dsrs.LaneMux().add_lane("fast", lm).add_lane("spare", lm)
    first = mux.call("same question")
    assert first.lane == "fast" and not first.usage.cache_hit
    again = mux.call("same question")
    assert again.lane == "fast" and again.usage.cache_hit
    plain = lm.call("same question")
    assert plain.usage.cache_hit and plain.lane is None
    on_spare = mux.call("same question", lane="spare")
    assert on_spare.usage.cache_hit and on_spare.lane == "spare"


# --- budgets that hold -----------------------------------------------------------------------------


def test_a_budgeted_lane_without_max_tokens_sends_the_cap_it_reserved() -> None:
    with openai_wire_server() as srv:
        mux = dsrs.LaneMux(budget_msats=10**9, reserve_msats=10, default_max_tokens=256)
        mux.add_lane("only", dsrs.LM("m", base_url=srv.url))
        mux.call("hello")
        assert srv.requests[-1].json()["max_tokens"] == 256


def test_an_unbudgeted_lane_sends_no_cap_of_its_own() -> None:
    with openai_wire_server() as srv:
        mux = dsrs.LaneMux().add_lane("only", dsrs.LM("m", base_url=srv.url))
        mux.call("hello")
        assert "max_tokens" not in srv.requests[-1].json()


# --- a usage record for every attempt ----------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    @hookimpl
    def dsrs_usage_recorded(self, record: UsageRecord) -> None:
        self.records.append(record)


def test_failures_and_answers_are_recorded_with_one_request_id() -> None:
    sink = _Sink()
    name = register_plugin(sink, name="test-sink")
    try:
        with openai_wire_server() as down, openai_wire_server() as up:
            down.handler = lambda req: Reply(503, {"error": {"message": "down", "type": "server_error"}})
            up.handler = openai_chat_reply
            mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=2, base_delay=0.0))
            mux.add_lane("down", dsrs.LM("m", base_url=down.url)).add_lane("up", dsrs.LM("m", base_url=up.url))
            mux.call("hello")
    finally:
        unregister_plugin(name)
    attempts = [(r.lane, r.attempt, r.error) for r in sink.records]
    assert attempts == [
        ("down", 1, "ProviderUnavailableError"),
        ("down", 2, "ProviderUnavailableError"),
        ("up", 3, None),
    ]
    assert len({r.request_id for r in sink.records}) == 1 and sink.records[0].request_id
    assert sink.records[-1].response is not None and sink.records[-1].request is not None


def test_a_broken_usage_sink_never_loses_the_answer() -> None:
    class Broken:
        @hookimpl
        def dsrs_usage_recorded(self, record: UsageRecord) -> None:
            raise RuntimeError("sink down")

    name = register_plugin(Broken(), name="broken-sink")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert dsrs.LM("fake:echo").call("still here").text == "still here"
        assert any("usage sink" in str(w.message) and "sink down" in str(w.message) for w in caught)
    finally:
        unregister_plugin(name)


def test_a_stream_without_its_final_chunk_is_a_parse_error() -> None:
    chunks = [
        'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"par"}}]}\n\n',
    ]
    with openai_wire_server() as srv:
        srv.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=chunks))
        with pytest.raises(dsrs.ResponseParseError):
            "".join(dsrs.LM("m", base_url=srv.url).stream("hello"))


def _bill_the_cap(req: Any) -> Reply:
    """A server that writes as much as it is allowed to (or 20,000 tokens when no cap is sent)."""
    cap = req.json().get("max_tokens") or 20_000
    return Reply(200, _chat("long answer", completion_tokens=cap, total_tokens=cap + 3))


class _PerToken:
    @hookimpl
    def dsrs_cost(self, model: str, usage: dsrs.LmUsage) -> dsrs.Cost | None:
        if model != "openai-compatible:billed":
            return None
        return dsrs.Cost(msats=usage.prompt_tokens + usage.completion_tokens)


@pytest.mark.parametrize("max_tokens", [None, 1000], ids=["no max_tokens", "max_tokens=1000"])
async def test_concurrent_calls_never_overspend_a_budget(max_tokens: int | None) -> None:
    import asyncio

    name = register_plugin(_PerToken(), name="per-token-pricing")
    try:
        with openai_wire_server() as srv:
            srv.handler = _bill_the_cap
            budget = 24_620
            mux = dsrs.LaneMux(budget_msats=budget, default_max_tokens=4096)
            mux.add_lane("only", dsrs.LM("billed", base_url=srv.url, max_tokens=max_tokens))
            results = await asyncio.gather(*(mux.acall(f"call {i}") for i in range(10)), return_exceptions=True)
        spent = (await mux.abudget_status())["global"].spent
        answered = [r for r in results if isinstance(r, dsrs.LMResponse)]
        assert answered, results
        assert spent <= budget, f"overspent by {spent - budget} msats"
        assert spent == sum(r.usage.cost_msats or 0 for r in answered)
    finally:
        unregister_plugin(name)


def test_a_lanemux_deadline_bounds_all_attempts_together() -> None:
    import time

    with openai_wire_server() as slow, openai_wire_server() as slower:
        slow.handler = lambda req: Reply(503, {"error": {"message": "busy", "type": "server_error"}}, delay=0.2)
        slower.handler = lambda req: Reply(200, _chat(), delay=5.0)
        mux = dsrs.LaneMux(deadline=0.8, retry=dsrs.RetryPolicy(max_attempts=3, base_delay=0.05))
        mux.add_lane("slow", dsrs.LM("m", base_url=slow.url)).add_lane("slower", dsrs.LM("m", base_url=slower.url))
        t0 = time.monotonic()
        with pytest.raises(dsrs.LMTimeoutError, match=r"deadline of 0\.8s"):
            mux.call("hello")
        took = time.monotonic() - t0
        assert took < 0.8 + 0.2, took
        t0 = time.monotonic()
        with pytest.raises(dsrs.LMTimeoutError, match="deadline"):
            "".join(mux.stream("hello"))
        assert time.monotonic() - t0 < 0.8 + 0.2
    with pytest.raises(dsrs.InvalidValueError, match="deadline"):
        dsrs.LaneMux(deadline=0)
