"""Every Anthropic error type, on a call and on a stream; the key never leaks; hostile 2xx bodies.

Error bodies are the API's own shape, ``{"type": "error", "error": {"type", "message"},
"request_id"}``, with the types and statuses of https://docs.anthropic.com/en/api/errors; a stream
reports the same object as an ``event: error`` (https://docs.anthropic.com/en/docs/build-with-claude/streaming#error-events).
The too-long-prompt message is the API's wording ("prompt is too long: N tokens > M maximum").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import dsrs
from dsrs.testing import LoopbackServer, Reply
from dsrs_anthropic.testing import anthropic_wire_server, error_reply, sse, transcript

KEY = "sk-ant-api03-TESTdsrs0123456789abcdefghijklmnopqrstuv"

CASES: list[tuple[str, int, str, str, dict[str, str], type[dsrs.LMError], float | None]] = [
    ("bad request", 400, "invalid_request_error", "messages: roles must alternate", {}, dsrs.InvalidRequestError, None),
    (
        "prompt too long",
        400,
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
        {},
        dsrs.ContextWindowExceededError,
        None,
    ),
    (
        "credit spent",
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade.",
        {},
        dsrs.QuotaExceededError,
        None,
    ),
    ("bad key", 401, "authentication_error", "invalid x-api-key", {}, dsrs.AuthenticationError, None),
    ("billing", 402, "billing_error", "There is an issue with your billing.", {}, dsrs.QuotaExceededError, None),
    ("no permission", 403, "permission_error", "Your API key does not have permission", {}, dsrs.PermissionDeniedError, None),
    ("unknown model", 404, "not_found_error", "model: claude-9", {}, dsrs.InvalidRequestError, None),
    ("too many bytes", 413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", {},
     dsrs.InvalidRequestError, None),
    ("rate limited", 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
     {"retry-after": "17", "anthropic-ratelimit-requests-remaining": "0"}, dsrs.RateLimitError, 17.0),
    ("api error", 500, "api_error", "Internal server error", {}, dsrs.ProviderUnavailableError, None),
    ("timeout", 504, "timeout_error", "Request timed out", {}, dsrs.LMTimeoutError, None),
    ("overloaded", 529, "overloaded_error", "Overloaded", {"retry-after": "3"}, dsrs.ProviderUnavailableError, 3.0),
    ("a type added later, 503", 503, "future_error", "something new", {}, dsrs.ProviderUnavailableError, None),
]  # fmt: skip


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with anthropic_wire_server(api_keys=[KEY]) as srv:
        yield srv


def lm(server: LoopbackServer, model: str = "claude-sonnet-4-5") -> dsrs.LM:
    return dsrs.LM(model, base_url=server.url, api_key=KEY)


def ids(case: tuple[Any, ...]) -> str:
    return str(case[0])


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_error_types_on_a_call(server: LoopbackServer, case: tuple[Any, ...]) -> None:
    _, status, etype, message, headers, cls, retry = case
    server.push(error_reply(status, etype, message, headers))
    with pytest.raises(cls) as info:
        lm(server).call("hi")
    err = info.value
    assert type(err) is cls, f"{type(err).__name__} is not exactly {cls.__name__}"
    assert err.status == status and err.code == etype and err.provider == "anthropic"
    assert message[:30] in err.message
    assert err.retry_after == retry


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_error_types_on_a_stream(server: LoopbackServer, case: tuple[Any, ...]) -> None:
    _, status, etype, message, headers, cls, retry = case
    server.push(error_reply(status, etype, message, headers))
    with pytest.raises(cls) as info:
        list(lm(server).stream("hi"))
    assert type(info.value) is cls and info.value.status == status and info.value.retry_after == retry


@pytest.mark.parametrize("case", [c for c in CASES if c[2] != "future_error"], ids=ids)
def test_error_event_mid_stream(server: LoopbackServer, case: tuple[Any, ...]) -> None:
    _, _, etype, message, _, cls, _ = case
    events = transcript(
        {"model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Hello there friend"}],
         "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 3}}
    )[:5]  # fmt: skip
    events.append(sse("error", {"type": "error", "error": {"type": etype, "message": message}}))
    server.push(Reply(200, headers={"content-type": "text/event-stream"}, chunks=events))
    deltas: list[str] = []
    with pytest.raises(cls) as info:
        deltas.extend(lm(server).stream("hi"))
    assert deltas == ["Hello", " there"] and type(info.value) is cls and info.value.code == etype


def test_rate_limit_reset_header_when_no_retry_after(server: LoopbackServer) -> None:
    reset = (datetime.now(timezone.utc) + timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(timezone.utc) + timedelta(seconds=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    server.push(
        error_reply(
            429,
            "rate_limit_error",
            "rate limited",
            {
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": reset,
                "anthropic-ratelimit-requests-remaining": "40",
                "anthropic-ratelimit-requests-reset": later,
            },
        )
    )
    with pytest.raises(dsrs.RateLimitError) as info:
        lm(server).call("hi")
    assert info.value.retry_after is not None and 35 <= info.value.retry_after <= 41


def test_overload_with_an_html_body_and_oversize_from_the_edge(server: LoopbackServer) -> None:
    server.push(Reply(529, "<html>overloaded</html>", {"content-type": "text/html"}))
    with pytest.raises(dsrs.ProviderUnavailableError):
        lm(server).call("hi")
    server.push(Reply(413, "<html><body>413 Request Entity Too Large</body></html>", {"content-type": "text/html"}))
    with pytest.raises(dsrs.InvalidRequestError) as info:
        lm(server).call("hi")
    assert type(info.value) is dsrs.InvalidRequestError and info.value.code == "request_too_large"


def test_missing_key_fails_before_sending(server: LoopbackServer) -> None:
    with pytest.raises(dsrs.AuthenticationError, match="ANTHROPIC_API_KEY"):
        dsrs.LM("claude-sonnet-4-5", base_url=server.url).call("hi")
    with pytest.raises(dsrs.AuthenticationError):
        list(dsrs.LM("claude-sonnet-4-5", base_url=server.url).stream("hi"))
    assert server.requests == []


# --- secrets --------------------------------------------------------------------------------


def _echo(status: int) -> Any:
    def handler(req: Any) -> Reply:
        key = req.headers.get("x-api-key", "")
        body = {"type": "error", "error": {"type": "authentication_error" if status == 401 else "api_error",
                "message": f"invalid x-api-key {key} (api_key={key})"}, "request_id": key}  # fmt: skip
        return Reply(status, body, {"content-type": "application/json", "x-echo": key})

    return handler


def _all_text(err: BaseException) -> str:
    seen: list[str] = []
    e: BaseException | None = err
    while e is not None:
        seen += [str(e), repr(e), *(repr(v) for v in vars(e).values())]
        e = e.__cause__ or e.__context__
    return "\n".join(seen)


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("key_from", ["argument", "environment"])
def test_key_echoed_by_the_server_never_appears(
    status: int, key_from: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-ant-api03-LEAKED-zzzzzzzzzzzzzzzzzzzzzz"
    odd = "plainsecretvalue42"  # no credential shape: only knowing the key redacts it
    with LoopbackServer(_echo(status)) as srv:
        for value in (secret, odd):
            if key_from == "environment":
                monkeypatch.setenv("ANTHROPIC_API_KEY", value)
                model = dsrs.LM("claude-sonnet-4-5", base_url=srv.url)
            else:
                model = dsrs.LM("claude-sonnet-4-5", base_url=srv.url, api_key=value)
            caplog.set_level(logging.DEBUG)
            for run in (lambda m=model: m.call("hi"), lambda m=model: list(m.stream("hi"))):
                with pytest.raises(dsrs.LMError) as info:
                    run()
                assert isinstance(
                    info.value, dsrs.AuthenticationError if status == 401 else dsrs.ProviderUnavailableError
                )
                text = _all_text(info.value)
                assert value not in text and value not in (info.value.body or "")
            assert value not in caplog.text


def test_key_echoed_in_a_stream_error_event_never_appears() -> None:
    secret = "plainsecretvalue42"
    events = [sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": f"Overloaded {secret}"}})]
    handler = lambda req: Reply(200, headers={"content-type": "text/event-stream"}, chunks=events)  # noqa: E731
    with LoopbackServer(handler) as srv, pytest.raises(dsrs.ProviderUnavailableError) as info:
        list(dsrs.LM("claude-sonnet-4-5", base_url=srv.url, api_key=secret).stream("hi"))
    assert secret not in _all_text(info.value) and secret not in (info.value.body or "")


# --- hostile 2xx bodies -----------------------------------------------------------------------


def message(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    base.update(over)
    return base


HOSTILE: list[tuple[str, Any, str]] = [
    ("content is a string", message(content="hello"), "content must be a list"),
    ("text is a number", message(content=[{"type": "text", "text": 42}]), r"content\[0\].text must be a string"),
    ("block is a list", message(content=[["text"]]), r"content\[0\] must be an object"),
    ("tool input is a string", message(content=[{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]),
     r"content\[0\].input must be an object"),
    ("unknown block", message(content=[{"type": "hologram"}]), "content block type dsrs does not know"),
    ("usage is a list", message(usage=[1, 2]), "usage must be an object"),
    ("tokens as a string", message(usage={"input_tokens": "12", "output_tokens": 1}), "usage.input_tokens must be an int"),
    ("negative tokens", message(usage={"input_tokens": -5, "output_tokens": 1}), "usage.input_tokens must be an int"),
    ("huge tokens", message(usage={"input_tokens": 3, "output_tokens": 10**15}), "usage.output_tokens must be an int"),
    ("bigint tokens", message(usage={"input_tokens": 3, "output_tokens": 2**70}), "usage.output_tokens must be an int"),
    ("fractional tokens", message(usage={"input_tokens": 3.5, "output_tokens": 1}), "usage.input_tokens must be an int"),
    ("bool tokens", message(usage={"input_tokens": True, "output_tokens": 1}), "usage.input_tokens must be an int"),
    ("lying cache reads", message(usage={"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -1}),
     "cache_read_input_tokens must be an int"),
    ("deep usage", message(usage={"input_tokens": 3, "output_tokens": json.loads("[" * 400 + "1" + "]" * 400)}),
     "usage.output_tokens must be an int"),
    ("stop_reason is a number", message(stop_reason=7), "stop_reason must be a string"),
    ("not a message", {"type": "completion", "completion": "hi"}, "expected a Message object"),
    ("a JSON list", [message()], "not a JSON object"),
    ("HTML", "<html>gateway</html>", "HTML body"),
    ("not JSON", "hello", "non-JSON body"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "payload", "message_re"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_wrong_types_in_a_2xx_body_are_response_parse_errors(
    server: LoopbackServer, name: str, payload: Any, message_re: str
) -> None:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    server.push(Reply(200, raw, {"content-type": "application/json"}))
    with pytest.raises(dsrs.ResponseParseError, match=message_re) as info:
        lm(server).call("hi")
    assert info.value.retryable and info.value.provider == "anthropic"


def test_an_error_object_in_a_2xx_body_is_typed(server: LoopbackServer) -> None:
    server.push(Reply(200, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    with pytest.raises(dsrs.ProviderUnavailableError):
        lm(server).call("hi")


def test_refusal_is_a_content_filter_error(server: LoopbackServer) -> None:
    server.push(Reply(200, message(stop_reason="refusal", content=[])))
    with pytest.raises(dsrs.ContentFilterError, match="refusal"):
        lm(server).call("hi")


def _stream(*events: str) -> Reply:
    return Reply(200, headers={"content-type": "text/event-stream"}, chunks=list(events))


START = sse("message_start", {"type": "message_start", "message": {**message(content=[], stop_reason=None)}})
BLOCK = sse(
    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
)
DELTA = sse(
    "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}
)
STOP_BLOCK = sse("content_block_stop", {"type": "content_block_stop", "index": 0})
END = sse(
    "message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}
)
STOP = sse("message_stop", {"type": "message_stop"})

STREAMS: list[tuple[str, list[str], str]] = [
    ("ends without message_stop", [START, BLOCK, DELTA, STOP_BLOCK, END], "ended before message_stop"),
    ("ends right after message_start", [START], "ended before message_stop"),
    ("delta before message_start", [BLOCK, DELTA, STOP], "before message_start"),
    ("delta for a block never started", [START, DELTA, STOP], "was not started"),
    ("text delta of the wrong type", [START, BLOCK, sse("content_block_delta", {"type": "content_block_delta",
     "index": 0, "delta": {"type": "text_delta", "text": {"x": 1}}}), STOP], "text_delta.text must be a string"),
    ("lying output usage", [START, BLOCK, DELTA, STOP_BLOCK, sse("message_delta", {"type": "message_delta",
     "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2**70}}), STOP], "output_tokens must be an int"),
    ("not JSON", [START, "event: content_block_delta\ndata: {oops\n\n"], "not JSON"),
    ("tool JSON cut short", [START, sse("content_block_start", {"type": "content_block_start", "index": 0,
     "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}), sse("content_block_delta",
     {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a": '}}),
     STOP_BLOCK, END, STOP], "input of block 0 is not JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "events", "message_re"), STREAMS, ids=[s[0] for s in STREAMS])
def test_broken_streams_are_response_parse_errors(
    server: LoopbackServer, name: str, events: list[str], message_re: str
) -> None:
    server.push(_stream(*events))
    with pytest.raises(dsrs.ResponseParseError, match=message_re):
        list(lm(server).stream("hi"))


def test_unknown_events_and_pings_are_skipped(server: LoopbackServer) -> None:
    ping = sse("ping", {"type": "ping"})
    future = sse("message_annotation", {"type": "message_annotation", "note": "new in a later API version"})
    server.push(_stream(START, ping, BLOCK, future, DELTA, ping, STOP_BLOCK, END, STOP))
    s = lm(server).stream("hi")
    assert list(s) == ["hi"] and s.response is not None and s.response.finish_reason == "stop"


def _ending(stop_reason: str) -> str:
    return sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 1},
        },
    )


def test_a_streamed_refusal_is_a_content_filter_error(server: LoopbackServer) -> None:
    server.push(_stream(START, BLOCK, DELTA, STOP_BLOCK, _ending("refusal"), STOP))
    got: list[str] = []
    with pytest.raises(dsrs.ContentFilterError):
        got.extend(lm(server).stream("hi"))
    assert got == ["hi"]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("max_tokens", "length"), ("pause_turn", "pause_turn"), ("stop_sequence", "stop"),
     ("model_context_window_exceeded", "length"), ("a_new_reason", "a_new_reason")],
)  # fmt: skip
def test_stop_reasons_on_a_stream(server: LoopbackServer, stop_reason: str, finish: str) -> None:
    server.push(_stream(START, BLOCK, DELTA, STOP_BLOCK, _ending(stop_reason), STOP))
    s = lm(server).stream("hi")
    assert list(s) == ["hi"] and s.response is not None and s.response.finish_reason == finish


def test_redacted_thinking_is_kept_for_the_next_turn(server: LoopbackServer) -> None:
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDq2n"}
    server.push(Reply(200, message(content=[redacted, {"type": "text", "text": "ok"}])))
    r = lm(server).call("hi")
    assert r.text == "ok" and r.reasoning is None
    assert (r.provider_state or {})["anthropic"]["thinking"] == [redacted]
    lm(server).call([{"role": "user", "content": "hi"}, r.message(), {"role": "user", "content": "more"}])
    assert server.requests[-1].json()["messages"][1]["content"][0] == redacted


@pytest.mark.parametrize("streamed", [False, True])
def test_a_2xx_body_quoting_the_key_never_leaks_it(streamed: bool) -> None:
    secret = "plainsecretvalue42"

    def handler(req: Any) -> Reply:
        key = req.headers.get("x-api-key", "")
        bad = message(usage={"input_tokens": key, "output_tokens": 1})
        if not streamed:
            return Reply(200, bad)
        start = sse("message_start", {"type": "message_start", "message": {**bad, "content": []}})
        return _stream(start, BLOCK, DELTA, STOP_BLOCK, END, STOP)

    with LoopbackServer(handler) as srv:
        model = dsrs.LM("claude-sonnet-4-5", base_url=srv.url, api_key=secret)
        send = (lambda: list(model.stream("hi"))) if streamed else (lambda: model.call("hi"))
        with pytest.raises(dsrs.ResponseParseError) as info:
            send()
    assert "usage.input_tokens must be an int" in str(info.value)
    assert secret not in _all_text(info.value) and secret not in (info.value.body or "")
