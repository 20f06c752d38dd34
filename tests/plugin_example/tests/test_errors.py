"""The error table, on a call and on a stream, against the loopback Acme wire."""

from __future__ import annotations

import pytest
from dsrs_acme_example.testing import error_reply, sse, stream_events, stream_reply

import dsrs
from dsrs import errors
from dsrs.testing import LoopbackServer

KEY = "acme-test-key-0123456789abcdef"

TABLE = [
    (401, "invalid_api_key", errors.AuthenticationError),
    (429, "rate_limited", errors.RateLimitError),
    (429, "quota_exceeded", errors.QuotaExceededError),
    (400, "too_many_tokens", errors.ContextWindowExceededError),
    (400, "content_blocked", errors.ContentFilterError),
    (404, "model_not_found", errors.InvalidRequestError),
    (503, "overloaded", errors.ProviderUnavailableError),
    # No code: the HTTP status decides (the generic layer).
    (402, None, errors.QuotaExceededError),
    (500, None, errors.ProviderUnavailableError),
    (403, None, errors.PermissionDeniedError),
    (422, None, errors.InvalidRequestError),
]


def lm(server: LoopbackServer) -> dsrs.LM:
    return dsrs.LM("acme-large", base_url=server.url, api_key=KEY, retries=0)


@pytest.mark.parametrize("streamed", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize(("status", "code", "cls"), TABLE)
def test_error_table(
    acme_server: LoopbackServer, status: int, code: str | None, cls: type[errors.LMError], streamed: bool
) -> None:
    acme_server.push(error_reply(status, code, f"echoing {KEY}", {"retry-after": "7"}))
    with pytest.raises(cls) as info:
        "".join(lm(acme_server).stream("hi")) if streamed else lm(acme_server).call("hi")
    err = info.value
    assert type(err) is cls, type(err)
    assert (err.provider, err.model, err.status) == ("acme", "acme-large", status)
    assert KEY not in str(err) and KEY not in (err.body or "") and KEY not in repr(err)
    if cls is errors.RateLimitError:
        assert err.retry_after == 7


def test_an_error_event_in_a_stream_is_typed(acme_server: LoopbackServer) -> None:
    events = stream_events("partial answer", 2, end=False)
    acme_server.push(stream_reply([*events, sse("error", {"code": "overloaded", "message": f"busy {KEY}"})]))
    with pytest.raises(errors.ProviderUnavailableError) as info:
        "".join(lm(acme_server).stream("hi"))
    assert KEY not in str(info.value)


def test_a_stream_without_message_end_is_a_parse_error(acme_server: LoopbackServer) -> None:
    acme_server.push(stream_reply(stream_events("cut short", 2, end=False)))
    with pytest.raises(errors.ResponseParseError, match="message-end"):
        "".join(lm(acme_server).stream("hi"))


def test_missing_key_fails_before_sending(acme_server: LoopbackServer) -> None:
    with pytest.raises(errors.AuthenticationError, match="ACME_API_KEY"):
        dsrs.LM("acme-large", base_url=acme_server.url).call("hi")
    assert acme_server.requests == []


def test_probe_is_async_and_reports_without_raising(
    acme_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    spec = dsrs.provider_spec("acme")
    cls = spec.load()
    assert not asyncio.run(cls.probe(spec, 2.0)).configured
    monkeypatch.setenv("ACME_API_KEY", KEY)
    monkeypatch.setenv("ACME_BASE_URL", acme_server.url)
    ok = asyncio.run(cls.probe(spec, 2.0))
    assert (ok.configured, ok.reachable, ok.detail) == (True, True, "ok")
    monkeypatch.setenv("ACME_API_KEY", "acme-wrong-key-00000000")
    rejected = asyncio.run(cls.probe(spec, 2.0))
    assert (rejected.reachable, rejected.detail) == (False, "key rejected (HTTP 401)")
