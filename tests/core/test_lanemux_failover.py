"""LaneMux routing against loopback servers that inject faults: retry, failover, cooldowns."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator

import pytest

import dsrs
from dsrs._lanemux import CooldownPolicy, FailoverPolicy, LaneMux, RetryPolicy
from dsrs.testing import LoopbackServer, RecordedRequest, Reply, openai_chat_reply, openai_wire_server

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.05)


def err(status: int, code: str, message: str = "x", headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "type": code, "code": code}}, headers=headers or {})


@pytest.fixture
def servers() -> Iterator[tuple[LoopbackServer, LoopbackServer, LoopbackServer]]:
    a, b, c = openai_wire_server(), openai_wire_server(), openai_wire_server()
    with a, b, c:
        yield a, b, c


def mux_of(*srvs: LoopbackServer, timeout: float | None = None, **options: object) -> LaneMux:
    options.setdefault("retry", FAST_RETRY)
    mux = LaneMux(**options)  # type: ignore[arg-type]
    for name, srv in zip("abc", srvs, strict=False):
        mux.add_lane(name, dsrs.LM("m", base_url=srv.url, timeout=timeout))
    return mux


async def test_healthy_first_lane_answers(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    mux = mux_of(a, b)
    r = await mux.acall("hello")
    assert (r.text, r.lane) == ("hello", "a")
    assert len(b.requests) == 0


async def test_rate_limit_with_retry_after_moves_on_at_once_and_cools_the_lane(
    servers: tuple[LoopbackServer, ...],
) -> None:
    a, b, _ = servers
    a.push(err(429, "rate_limit_exceeded", headers={"retry-after": "30"}))
    mux = mux_of(a, b)
    t0 = time.perf_counter()
    r = await mux.acall("hi")
    assert r.lane == "b"
    assert time.perf_counter() - t0 < 5  # no waiting for the 30 s
    assert len(a.requests) == 1  # no retry on the rate-limited lane
    health = (await mux.ahealth())["a"]
    assert health.status == "cooling" and health.until is not None
    assert 28 < health.until - time.time() <= 30
    # While cooling, lane a is skipped without a request.
    assert (await mux.acall("again")).lane == "b"
    assert len(a.requests) == 1
    await mux.reset_lane("a")
    assert (await mux.acall("after reset")).lane == "a"


async def test_rate_limit_without_retry_after_uses_the_default_cooldown(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    a.push(Reply(429, {"error": {"message": "slow down", "type": "requests", "code": None}}))
    mux = mux_of(a, b, cooldown=CooldownPolicy(rate_limit_default=7.0))
    assert (await mux.acall("x")).lane == "b"
    health = (await mux.ahealth())["a"]
    assert health.status == "cooling" and health.until is not None
    assert 6 < health.until - time.time() <= 7


async def test_quota_exhausts_the_lane(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    a.push(err(429, "insufficient_quota", "You exceeded your current quota"))
    mux = mux_of(a, b)
    assert (await mux.acall("x")).lane == "b"
    health = (await mux.ahealth())["a"]
    assert health.status == "exhausted" and health.until is None
    assert (await mux.acall("y")).lane == "b"
    assert len(a.requests) == 1
    assert "quota exhausted" in mux.describe()


@pytest.mark.parametrize(("status", "code"), [(401, "invalid_api_key"), (403, "permission_denied")])
async def test_auth_failures_disable_the_lane(servers: tuple[LoopbackServer, ...], status: int, code: str) -> None:
    a, b, _ = servers
    a.push(err(status, code))
    mux = mux_of(a, b)
    assert (await mux.acall("x")).lane == "b"
    assert (await mux.ahealth())["a"].status == "disabled"
    assert (await mux.acall("y")).lane == "b"
    assert len(a.requests) == 1


async def test_5xx_is_retried_on_the_same_lane_then_succeeds(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    a.push(err(503, "server_error"), err(500, "server_error"))
    mux = mux_of(a, b)
    r = await mux.acall("x")
    assert r.lane == "a"
    assert len(a.requests) == 3 and len(b.requests) == 0
    assert (await mux.ahealth())["a"].consecutive_failures == 0


async def test_persistent_5xx_retries_a_bounded_number_of_times_then_fails_over(
    servers: tuple[LoopbackServer, ...],
) -> None:
    a, b, _ = servers
    a.handler = lambda req: err(502, "bad_gateway")
    mux = mux_of(a, b, cooldown=CooldownPolicy(failure_threshold=3, failure_cooldown=20))
    r = await mux.acall("x")
    assert r.lane == "b"
    assert len(a.requests) == FAST_RETRY.max_attempts
    # Three failures in a row: the lane rests (circuit breaker), so the next call goes straight to b.
    assert (await mux.ahealth())["a"].status == "cooling"
    await mux.acall("y")
    assert len(a.requests) == FAST_RETRY.max_attempts


async def test_slow_answers_time_out_and_fail_over(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    a.handler = lambda req: Reply(200, {}, delay=1.0)
    mux = mux_of(a, b, timeout=0.2, retry=RetryPolicy(max_attempts=2, base_delay=0.001))
    r = await mux.acall("x")
    assert r.lane == "b"
    assert len(a.requests) == 2


async def test_truncated_bodies_are_retried_then_fail_over(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers

    def truncated(req: RecordedRequest) -> Reply:
        full = openai_chat_reply(req)
        return Reply(200, full.body, headers={"content-type": "application/json"}, truncate_to=20)

    a.handler = truncated
    mux = mux_of(a, b)
    assert (await mux.acall("x")).lane == "b"
    assert len(a.requests) == 3


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (err(400, "invalid_request_error"), dsrs.InvalidRequestError),
        (err(400, "context_length_exceeded"), dsrs.ContextWindowExceededError),
        (err(400, "content_filter"), dsrs.ContentFilterError),
    ],
)
async def test_request_errors_are_raised_without_failover(
    servers: tuple[LoopbackServer, ...], reply: Reply, error: type[dsrs.LMError]
) -> None:
    a, b, _ = servers
    a.push(reply)
    mux = mux_of(a, b)
    with pytest.raises(error):
        await mux.acall("x")
    assert len(a.requests) == 1 and len(b.requests) == 0
    assert (await mux.ahealth())["a"].status == "ok"


async def test_all_lanes_failing_reports_each_lane(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, c = servers
    a.handler = lambda req: err(429, "rate_limit_exceeded", headers={"retry-after": "5"})
    b.handler = lambda req: err(401, "invalid_api_key")
    c.handler = lambda req: err(500, "server_error")
    mux = mux_of(a, b, c)
    with pytest.raises(dsrs.AllLanesFailedError) as info:
        await mux.acall("x")
    errs = info.value.errors
    assert isinstance(errs["a"], dsrs.RateLimitError)
    assert isinstance(errs["b"], dsrs.AuthenticationError)
    assert isinstance(errs["c"], dsrs.ProviderUnavailableError)
    text = str(info.value)
    assert "a: " in text and "b: " in text and "c: " in text
    # The next call explains why nothing was tried.
    with pytest.raises(dsrs.AllLanesFailedError, match="cooling down") as again:
        await mux.acall("x")
    assert "disabled" in str(again.value)


async def test_three_lanes_complete_every_request_while_one_is_healthy(
    servers: tuple[LoopbackServer, ...],
) -> None:
    a, b, c = servers
    rng = random.Random(7)
    lock = threading.Lock()

    def flaky_a(req: RecordedRequest) -> Reply:
        with lock:
            roll = rng.random()
        if roll < 0.3:
            return err(503, "server_error")
        if roll < 0.4:
            return err(429, "rate_limit_exceeded", headers={"retry-after-ms": "50"})
        if roll < 0.5:
            return Reply(200, b'{"id": "x", "choi', headers={"content-type": "application/json"})
        return openai_chat_reply(req)

    def flaky_b(req: RecordedRequest) -> Reply:
        with lock:
            roll = rng.random()
        if roll < 0.5:
            return Reply(200, openai_chat_reply(req).body, truncate_to=15)
        if roll < 0.7:
            return err(500, "server_error")
        return openai_chat_reply(req)

    a.handler, b.handler = flaky_a, flaky_b
    mux = mux_of(a, b, c, cooldown=CooldownPolicy(failure_cooldown=0.05, rate_limit_default=0.05))
    results = await asyncio.gather(*(mux.acall(f"request {i}") for i in range(120)))
    assert [r.text for r in results] == [f"request {i}" for i in range(120)]
    lanes = {r.lane for r in results}
    assert "c" in lanes and lanes <= {"a", "b", "c"}
    assert mux.usage.calls == 120


async def test_failover_can_be_switched_off(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    a.handler = lambda req: err(503, "server_error")
    mux = mux_of(a, b, failover=FailoverPolicy(enabled=False))
    with pytest.raises(dsrs.ProviderUnavailableError):
        await mux.acall("x")
    assert len(a.requests) == 3 and len(b.requests) == 0


async def test_lane_by_tier_fails_over_within_the_tier(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, c = servers
    a.push(err(503, "server_error"))
    mux = (
        LaneMux(retry=RetryPolicy(max_attempts=1))
        .add_lane("p1", dsrs.LM("m", base_url=a.url), tier="premium")
        .add_lane("local", dsrs.LM("m", base_url=c.url), tier="local")
        .add_lane("p2", dsrs.LM("m", base_url=b.url), tier="premium")
    )
    assert (await mux.acall("x", lane="premium")).lane == "p2"
    assert len(c.requests) == 0
    assert (await mux.acall("x", lane="local")).lane == "local"
    with pytest.raises(dsrs.UnknownLaneError, match="tiers: local, premium"):
        await mux.acall("x", lane="swarm")


async def test_stream_fails_over_before_the_first_delta(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    a.push(err(429, "rate_limit_exceeded"))
    mux = mux_of(a, b)
    stream = mux.astream("one two three")
    pieces = [p async for p in stream]
    assert "".join(pieces) == "one two three"
    assert stream.lane == "b"
    assert stream.response is not None and stream.response.usage.completion_tokens == 3
    assert mux.usage_by_lane["b"].calls == 1


def test_sync_call_and_stream_from_plain_code(servers: tuple[LoopbackServer, ...]) -> None:
    a, b, _ = servers
    mux = mux_of(a, b)
    assert mux.call("sync hi").lane == "a"
    stream = mux.stream("streamed words here")
    assert stream.text() == "streamed words here"
    assert stream.lane == "a"


def test_usage_is_aggregated_per_lane_and_overall() -> None:
    mux = (
        LaneMux()
        .add_lane("broken", dsrs.LM("fake:echo", fail="quota"))
        .add_lane("one", dsrs.LM("fake:echo"))
        .add_lane("two", dsrs.LM("fake:echo"))
    )
    for text in ("a b", "c d e"):
        mux.call(text)
    mux.call("f", lane="two")
    by_lane = mux.usage_by_lane
    assert set(by_lane) == {"one", "two"}
    assert by_lane["one"].calls == 2 and by_lane["one"].prompt_tokens == 5
    assert by_lane["two"].calls == 1
    total = mux.usage
    assert total.calls == 3
    assert total.cost_msats == sum(u.cost_msats or 0 for u in by_lane.values())


def test_retry_policy_backoff_and_jitter() -> None:
    p = RetryPolicy(max_attempts=5, base_delay=0.1, multiplier=2, max_delay=0.5, jitter=False)
    assert [p.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
    assert p.delay(5) is None  # the 5th attempt was the last
    assert p.delay(1, retry_after=0.3) == 0.3
    assert p.delay(1, retry_after=5) is None  # too long to wait here: fail over
    jittered = RetryPolicy(base_delay=0.1, max_attempts=10)
    values = [jittered.delay(1) for _ in range(200)]
    assert all(v is not None and 0.05 <= v <= 0.1 for v in values)
    assert len(set(values)) > 100
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_add_lane_validates_and_chains() -> None:
    mux = LaneMux().add_lane("x", "fake:echo", tier="local")
    assert mux.lane_names == ("x",)
    with pytest.raises(ValueError, match="already exists"):
        mux.add_lane("x", "fake:echo")
    with pytest.raises(ValueError, match="tier"):
        mux.add_lane("y", "fake:echo", tier="gold")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mux.add_lane("z", 42)  # type: ignore[arg-type]


async def test_a_lane_whose_provider_is_missing_is_disabled() -> None:
    mux = LaneMux().add_lane("ghost", dsrs.LM("nosuchprovider:model")).add_lane("ok", dsrs.LM("fake:echo"))
    assert (await mux.acall("x")).lane == "ok"
    assert (await mux.ahealth())["ghost"].status == "disabled"


async def test_empty_mux_says_so() -> None:
    with pytest.raises(dsrs.AllLanesFailedError, match="no lane available"):
        await LaneMux().acall("x")


def test_mux_works_with_configure_and_lm_protocol() -> None:
    from dsrs._settings import LanguageModel

    mux = LaneMux().add_lane("f", "fake:echo")
    assert isinstance(mux, LanguageModel)
    assert mux("direct").lane == "f"


async def test_wait_for_cooldown_rides_out_a_short_rate_limit() -> None:
    lm = dsrs.LM("fake:echo", fail="rate_limit", fail_times=1, retry_after=0.2)
    patient = LaneMux(failover=FailoverPolicy(wait_for_cooldown=1.0)).add_lane("only", lm)
    t0 = time.perf_counter()
    r = await patient.acall("hello")
    assert (r.text, r.lane) == ("hello", "only")
    assert time.perf_counter() - t0 >= 0.2
    # Without it (the default), the same failure is reported at once.
    impatient = LaneMux().add_lane("only", dsrs.LM("fake:echo", fail="rate_limit", fail_times=1, retry_after=0.2))
    with pytest.raises(dsrs.AllLanesFailedError, match="only"):
        await impatient.acall("hello")
    # A cooldown longer than the wait is not waited for.
    long = LaneMux(failover=FailoverPolicy(wait_for_cooldown=0.1)).add_lane(
        "only", dsrs.LM("fake:echo", fail="rate_limit", fail_times=1, retry_after=5)
    )
    t0 = time.perf_counter()
    with pytest.raises(dsrs.AllLanesFailedError):
        await long.acall("hello")
    assert time.perf_counter() - t0 < 1


async def test_stream_waits_for_cooldown_too() -> None:
    lm = dsrs.LM("fake:echo", fail="rate_limit", fail_times=1, retry_after=0.1)
    mux = LaneMux(failover=FailoverPolicy(wait_for_cooldown=1.0)).add_lane("only", lm)
    stream = mux.astream("a b c")
    assert "".join([p async for p in stream]) == "a b c"
    assert stream.lane == "only"
