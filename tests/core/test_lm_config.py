"""dsrs.LM: immutable config, fluent copies, secrets, calls and streams (fake provider)."""

from __future__ import annotations

import asyncio
import logging

import pydantic
import pytest

import dsrs


def test_fluent_copies_leave_the_original_alone() -> None:
    base = dsrs.LM("fake:echo")
    lm = base.with_max_tokens(4096).with_temperature(0.7).with_seed(42).with_cache(True).with_num_ctx(8192)
    assert (lm.max_tokens, lm.temperature, lm.seed, lm.cache, lm.options) == (4096, 0.7, 42, True, {"num_ctx": 8192})
    assert (base.max_tokens, base.temperature, base.seed, base.cache, base.options) == (None, None, None, False, {})
    assert lm.with_options(num_ctx=None).options == {}
    assert lm.with_base_url("http://h:1").base_url == "http://h:1"
    with pytest.raises(pydantic.ValidationError):
        lm.temperature = 0.1  # type: ignore[misc]


def test_provider_options_from_kwargs() -> None:
    lm = dsrs.LM("fake:echo", num_ctx=2048, top_p=0.9)
    assert lm.options == {"num_ctx": 2048, "top_p": 0.9}
    assert lm.build_request("x").options == {"num_ctx": 2048, "top_p": 0.9}


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -1}, {"max_tokens": 0}, {"timeout": 0}, {"base_url": "localhost:8000"}]
)
def test_bad_settings_are_clear_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # pydantic.ValidationError is a ValueError
        dsrs.LM("fake:echo", **kwargs)  # type: ignore[arg-type]


def test_api_key_is_secret_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-very-secret-123456"
    lm = dsrs.LM("fake:echo", api_key=secret).with_temperature(0.1)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("t").info("lm=%r %s", lm, lm)
    assert secret not in repr(lm) and secret not in str(lm) and secret not in caplog.text
    assert "api_key=***" in repr(lm)
    assert secret not in lm.model_dump_json()
    req = lm.build_request("hi")
    assert secret not in str(req.canonical()) and secret not in req.cache_key()
    assert lm.provider().config.api_key == secret  # still usable by the provider


def test_cache_key_covers_every_wire_parameter() -> None:
    lm = dsrs.LM("fake:echo")
    keys = {
        lm.build_request("p").cache_key(),
        lm.with_num_ctx(4096).build_request("p").cache_key(),
        lm.with_num_ctx(8192).build_request("p").cache_key(),
        lm.with_temperature(0.1).build_request("p").cache_key(),
        lm.with_max_tokens(10).build_request("p").cache_key(),
        lm.with_seed(1).build_request("p").cache_key(),
        lm.build_request("p", response_format=dsrs.ResponseFormat(schema={"type": "object"})).cache_key(),
        lm.build_request("p", tools=[dsrs.Tool("f")]).cache_key(),
        lm.build_request("q").cache_key(),
        dsrs.LM("fake:other").build_request("p").cache_key(),
    }
    assert len(keys) == 10
    assert (
        lm.build_request("p").cache_key()
        == dsrs.LM("fake:echo", api_key="sk-other-key-1234").build_request("p").cache_key()
    )


def test_call_acall_and_messages_forms() -> None:
    lm = dsrs.LM("fake:echo")
    assert lm.call("hi there").text == "hi there"
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q?"}]
    r = asyncio.run(lm.acall(msgs))
    assert r.text == "q?" and r.usage.prompt_tokens == 4 and r.usage.completion_tokens == 2
    assert r.usage.cost_msats == 4 * 1 + 2 * 2 and r.usage.cost_usd == pytest.approx(8e-6)
    assert r.provider == "fake" and r.model == "echo" and r.finish_reason == "stop"


def test_bad_messages_are_clear_errors() -> None:
    lm = dsrs.LM("fake:echo")
    with pytest.raises(ValueError, match="role"):
        lm.call([{"content": "no role"}])
    with pytest.raises(ValueError, match="unknown message role"):
        lm.call([{"role": "wizard", "content": "x"}])
    with pytest.raises(ValueError, match="empty"):
        lm.call([])


def test_sync_call_works_inside_a_running_loop() -> None:
    async def notebook_cell() -> str:
        return dsrs.LM("fake:echo").call("from a running loop").text

    assert asyncio.run(notebook_cell()) == "from a running loop"


def test_stream_sync_and_async_end_with_usage() -> None:
    lm = dsrs.LM("fake:echo")
    s = lm.stream("one two three")
    assert list(s) == ["one ", "two ", "three"]
    assert s.response is not None and s.response.text == "one two three" and s.usage is not None
    assert s.usage.cost_msats == 3 + 6

    async def run() -> list[str]:
        st = lm.astream("a b")
        out = [d async for d in st]
        assert st.response is not None and st.response.usage.total_tokens == 4
        return out

    assert asyncio.run(run()) == ["a ", "b"]


def test_errors_from_the_provider_are_typed() -> None:
    lm = dsrs.LM("fake:echo", fail="rate_limit", retry_after=3)
    with pytest.raises(dsrs.RateLimitError) as info:
        lm.call("x")
    assert info.value.retry_after == 3.0 and info.value.provider == "fake"
    with pytest.raises(dsrs.QuotaExceededError):
        dsrs.LM("fake:echo", fail="quota").call("x")


def test_cache_hit_is_marked_and_free() -> None:
    from dsrs._cache import MemoryCache, set_cache

    set_cache(MemoryCache())
    try:
        lm = dsrs.LM("fake:echo", cache=True)
        first = lm.call("cache me please")
        second = lm.call("cache me please")
        assert not first.usage.cache_hit and first.usage.cost_msats and first.usage.cost_msats > 0
        assert second.usage.cache_hit and second.usage.cost_msats == 0 and second.text == first.text
        assert second.usage.total_tokens == first.usage.total_tokens
        flaky = dsrs.LM("fake:echo", cache=True, fail="rate_limit", fail_times=1)
        with pytest.raises(dsrs.RateLimitError):
            flaky.call("err")
        again = flaky.call("err")  # the error was not cached: the provider is asked again
        assert again.text == "err" and not again.usage.cache_hit
    finally:
        set_cache(None)


def test_cache_key_includes_the_endpoint_resolved_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:1111")
    a = dsrs.LM("openai-compatible:m").build_request("p")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:2222")
    b = dsrs.LM("openai-compatible:m").build_request("p")
    assert a.base_url == "http://127.0.0.1:1111" and b.base_url == "http://127.0.0.1:2222"
    assert a.cache_key() != b.cache_key()
