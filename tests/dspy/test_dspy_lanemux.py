"""A LaneMux behind DSPy: failover, budgets, dsrs's cache, and dsrs's errors as DSPy's own."""

from __future__ import annotations

from collections.abc import Iterator

import dspy
import pytest
from dspy.utils import exceptions as dspy_errors

import dsrs
import dsrs_dspy
from dsrs.testing import LoopbackServer, Reply

from .conftest import chat_bodies, loopback_lm

SECRET = "sk-test-NOT-A-REAL-KEY-0123456789"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


@pytest.fixture
def down() -> Iterator[LoopbackServer]:
    """A server that is always overloaded (HTTP 503, OpenAI's error body)."""
    body = {"error": {"message": "The server is overloaded", "type": "server_error", "code": None}}
    with LoopbackServer(lambda req: Reply(503, body, headers={"content-type": "application/json"})) as srv:
        yield srv


def test_failover_to_the_next_lane_is_invisible_to_dspy(down: LoopbackServer, server: LoopbackServer) -> None:
    mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=1))
    mux.add_lane("down", loopback_lm(down)).add_lane("up", loopback_lm(server))
    dspy_lm = dsrs_dspy.LM(mux)
    with dspy.context(lm=dspy_lm):
        result = dspy.ChainOfThought("question -> answer")(question="still there?")
    assert result.answer == "answer to still there?"
    assert len(chat_bodies(down)) == 1 and len(chat_bodies(server)) == 1
    assert dspy_lm.history[-1]["dsrs"]["lane"] == "up"
    assert dspy_lm.model == "dsrs:lanemux(down,up)"


def test_lane_restricts_every_call_to_one_lane_or_tier(down: LoopbackServer, server: LoopbackServer) -> None:
    mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=1))
    mux.add_lane("cheap", loopback_lm(server), tier="local").add_lane("big", loopback_lm(down), tier="premium")
    local = dsrs_dspy.LM(mux, lane="local")
    with dspy.context(lm=local):
        assert dspy.Predict("question -> answer")(question="here?").answer == "answer to here?"
    assert local.history[-1]["dsrs"]["lane"] == "cheap" and local.model == "dsrs:lanemux(cheap,big)@local"
    with dspy.context(lm=dsrs_dspy.LM(mux, lane="big")), pytest.raises(dspy_errors.LMServerError):
        dspy.Predict("question -> answer")(question="there?")
    assert len(chat_bodies(server)) == 1 and len(chat_bodies(down)) == 1  # "big" never fell back to "cheap"
    with pytest.raises(TypeError, match=r"lane='local' selects a lane of a dsrs\.LaneMux"):
        dsrs_dspy.LM(loopback_lm(server), lane="local")


def test_every_lane_down_is_a_dspy_server_error_with_the_dsrs_cause(down: LoopbackServer) -> None:
    mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=1)).add_lane("a", loopback_lm(down))
    with dspy.context(lm=dsrs_dspy.LM(mux)), pytest.raises(dspy_errors.LMServerError) as info:
        dspy.Predict("question -> answer")(question="anyone?")
    (all_failed,) = [c for c in _chain(info.value) if isinstance(c, dsrs.AllLanesFailedError)]
    assert isinstance(all_failed.errors["a"], dsrs.ProviderUnavailableError)
    assert len(chat_bodies(down)) == 1, "DSPy must not retry on top of dsrs (num_retries=0)"


def test_a_budget_stops_the_program_before_overspending(server: LoopbackServer) -> None:
    budget = 6_000
    mux = dsrs.LaneMux(budget_msats=budget).add_lane("only", loopback_lm(server))
    dspy_lm = dsrs_dspy.LM(mux, max_tokens=40)
    answered = 0
    with dspy.context(lm=dspy_lm), pytest.raises(dspy_errors.LMBillingError) as info:  # noqa: PT012
        for i in range(100):
            dspy.Predict("question -> answer")(question=f"q{i}")
            answered += 1
    assert any(isinstance(c, dsrs.BudgetExceededError) for c in _chain(info.value))
    spent = sum(entry["dsrs"]["cost_msats"] for entry in dspy_lm.history)
    assert answered >= 1 and len(chat_bodies(server)) == answered, "the refused call never reached the server"
    assert spent == mux.usage.cost_msats and spent <= budget


def test_dsrs_cache_answers_the_second_identical_call(server: LoopbackServer) -> None:
    dspy_lm = dsrs_dspy.LM(loopback_lm(server, cache=True))
    with dspy.context(lm=dspy_lm, track_usage=True):
        first = dspy.Predict("question -> answer")(question="cached?")
        second = dspy.Predict("question -> answer")(question="cached?")
    assert first.answer == second.answer == "answer to cached?"
    assert len(chat_bodies(server)) == 1
    hit = dspy_lm.history[-1]
    assert hit["dsrs"]["cache_hit"] is True and hit["cost"] == 0
    assert second.get_lm_usage()[dspy_lm.model]["prompt_tokens"] == 0, "a cache hit bills no tokens"
    assert first.get_lm_usage()[dspy_lm.model]["prompt_tokens"] > 0


def test_auth_failure_is_dspy_auth_error_and_the_key_never_shows() -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {SECRET}",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    with LoopbackServer(lambda req: Reply(401, body, headers={"content-type": "application/json"})) as srv:
        lm = loopback_lm(srv, api_key=SECRET)
        with dspy.context(lm=dsrs_dspy.LM(lm)), pytest.raises(dspy_errors.LMAuthError) as info:
            dspy.Predict("question -> answer")(question="who am I?")
        assert srv.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was sent...
    causes = list(_chain(info.value))
    assert any(isinstance(c, dsrs.AuthenticationError) for c in causes)
    for cause in causes:  # ...and never comes back in any error of the chain
        assert SECRET not in str(cause) and SECRET not in repr(cause)


def test_rate_limit_is_dspy_rate_limit_error_with_retry_after() -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    headers = {"content-type": "application/json", "retry-after": "7"}
    with LoopbackServer(lambda req: Reply(429, body, headers=headers)) as srv:
        lm = loopback_lm(srv).with_retries(0)  # dsrs would retry a 429 itself; DSPy must not (num_retries=0)
        with dspy.context(lm=dsrs_dspy.LM(lm)), pytest.raises(dspy_errors.LMRateLimitError) as info:
            dspy.Predict("question -> answer")(question="again?")
        assert len(chat_bodies(srv)) == 1
    assert info.value.retry_after == 7


def test_a_stream_through_a_lanemux_fails_over_then_streams(down: LoopbackServer, server: LoopbackServer) -> None:
    import asyncio

    mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=1))
    mux.add_lane("down", loopback_lm(down)).add_lane("up", loopback_lm(server))
    program = dspy.streamify(
        dspy.Predict("question -> answer"),
        stream_listeners=[dspy.streaming.StreamListener(signature_field_name="answer")],
    )

    async def run() -> tuple[list[str], object]:
        pieces: list[str] = []
        final = None
        with dspy.context(lm=dsrs_dspy.LM(mux)):
            async for item in program(question="streamed"):
                if isinstance(item, dspy.streaming.StreamResponse):
                    pieces.append(item.chunk)
                elif isinstance(item, dspy.Prediction):
                    final = item
        return pieces, final

    pieces, final = asyncio.run(run())
    assert final is not None and final.answer == "answer to streamed"  # type: ignore[attr-defined]
    assert "".join(pieces).strip() == "answer to streamed" and len(pieces) > 1
    assert chat_bodies(server)[0]["stream"] is True
