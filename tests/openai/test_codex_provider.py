"""The Codex CLI provider.

Two layers:

* a fake ``codex`` executable (written per test) that records its argv/stdin and replays JSONL event
  streams recorded from the real CLI (``fixtures/codex/``, see the README there) — parsing,
  classification, isolation and the process-group kill on timeout;
* the real Codex CLI (``npm install @openai/codex`` into ``${DSRS_CACHE_HOME:-~/.cache/dsrs}/npm``),
  pointed at a loopback server speaking the Responses API as its model provider — skipped with the
  reason when it is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dsrs
from dsrs import ResponseFormat, errors
from dsrs.testing import LoopbackServer, ProviderConformance, Reply
from dsrs_openai.codex import classify_codex_error, find_codex, parse_events, render_prompt
from dsrs_openai.testing import openai_server

FIXTURES = Path(__file__).parent / "fixtures" / "codex"

FAKE = """#!{python}
import json, os, subprocess, sys, time
log = os.environ["FAKE_CODEX_LOG"]
record = {{"argv": sys.argv[1:], "stdin": sys.stdin.read(), "cwd": os.getcwd(), "pid": os.getpid(),
          "codex_api_key": os.environ.get("CODEX_API_KEY"), "codex_home": os.environ.get("CODEX_HOME")}}
if os.environ.get("FAKE_CODEX_HANG"):
    child = subprocess.Popen(["sleep", "300"])
    record["child"] = child.pid
with open(log, "a") as f:
    f.write(json.dumps(record) + "\\n")
events = open(os.environ["FAKE_CODEX_EVENTS"]).read().splitlines()
for i, line in enumerate(events):
    print(line, flush=True)
    if os.environ.get("FAKE_CODEX_HANG") and i == 1:
        time.sleep(300)
sys.exit(int(os.environ.get("FAKE_CODEX_EXIT", "0")))
"""


@pytest.fixture
def fake_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "codex"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("CODEX_BIN", str(exe))
    monkeypatch.setenv("FAKE_CODEX_LOG", str(log))
    monkeypatch.setenv("FAKE_CODEX_EVENTS", str(FIXTURES / "ok.jsonl"))
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_recorded_stream_parses_into_text_reasoning_usage(fake_codex: Path) -> None:
    r = dsrs.LM("codex:gpt-5-codex").call("say hello")
    assert r.text == "hello there codex"  # the last agent message is the answer
    assert r.reasoning == "**Answering briefly**"
    u = r.usage
    assert (u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens) == (6325, 6000, 38, 12)
    assert u.detail["codex_thread_id"] == "01a20f6f-1248-7752-a985-e81aabc1e145"
    assert u.cost_usd == pytest.approx((325 * 1.25 + 6000 * 0.125 + 38 * 10.0) / 1e6)  # gpt-5-codex at API rates


def test_argv_is_non_interactive_and_isolated(fake_codex: Path, tmp_path: Path) -> None:
    lm = dsrs.LM(
        "codex:gpt-5-codex",
        api_key="sk-codex-secret-123456789",
        config={"model_reasoning_effort": "low"},
        codex_home=str(tmp_path),
    )
    lm.call([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    lm.call("again")
    first, second = calls(fake_codex)
    argv = first["argv"]
    assert argv[:2] == ["exec", "--json"]
    assert {"--skip-git-repo-check", "--ephemeral"} <= set(argv)
    assert argv[argv.index("--sandbox") + 1] == "read-only"
    assert argv[argv.index("-m") + 1] == "gpt-5-codex"
    assert 'approval_policy="never"' in argv and 'model_reasoning_effort="low"' in argv
    assert argv[-1] == "-"  # prompt on stdin, never in argv
    assert first["stdin"] == "## Instructions\nbe brief\n\n## User\nhi"
    assert second["stdin"] == "again"
    assert first["cwd"] != second["cwd"] and first["pid"] != second["pid"]  # fresh process and directory per call
    assert first["codex_api_key"] == "sk-codex-secret-123456789"
    assert all("sk-codex-secret" not in a for a in argv)
    assert first["codex_home"] == str(tmp_path)
    assert "sk-codex-secret" not in repr(lm) and "sk-codex-secret" not in repr(lm.provider())


def test_output_schema_is_passed_as_a_file(fake_codex: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    dsrs.LM("codex:default").call("hi", response_format=ResponseFormat(schema=schema))
    (call,) = calls(fake_codex)
    assert "-m" not in call["argv"]  # codex:default lets Codex pick its configured model
    assert "--output-schema" in call["argv"]


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("unauthorized.jsonl", errors.AuthenticationError),
        ("quota.jsonl", errors.QuotaExceededError),
        ("rate_limit.jsonl", errors.RateLimitError),
        ("server_error.jsonl", errors.ProviderUnavailableError),
        ("context_window.jsonl", errors.ContextWindowExceededError),
        ("no_turn_end.jsonl", errors.ProviderUnavailableError),
    ],
)
def test_recorded_failures_are_classified(
    fake_codex: Path, monkeypatch: pytest.MonkeyPatch, fixture: str, expected: type[errors.LMError]
) -> None:
    monkeypatch.setenv("FAKE_CODEX_EVENTS", str(FIXTURES / fixture))
    monkeypatch.setenv("FAKE_CODEX_EXIT", "1")
    with pytest.raises(expected) as info:
        dsrs.LM("codex:gpt-5-codex").call("hi")
    assert info.value.provider == "codex"


def test_unsupported_parameters_are_refused_not_dropped(fake_codex: Path) -> None:
    for lm in (dsrs.LM("codex:x", temperature=0.2), dsrs.LM("codex:x", max_tokens=5), dsrs.LM("codex:x", seed=1)):
        with pytest.raises(errors.InvalidRequestError, match="codex exec has no"):
            lm.call("hi")
    with pytest.raises(errors.InvalidRequestError, match="unknown codex option"):
        dsrs.LM("codex:x", top_p=0.3).call("hi")
    assert not fake_codex.exists()


def test_timeout_kills_the_process_group(fake_codex: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CODEX_HANG", "1")
    t0 = time.monotonic()
    with pytest.raises(errors.LMTimeoutError, match="process group killed"):
        dsrs.LM("codex:gpt-5-codex", timeout=1.0).call("hi")
    assert time.monotonic() - t0 < 10
    (call,) = calls(fake_codex)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(call["child"], 0)  # the grandchild (sleep 300) must be gone too
        except ProcessLookupError:
            break
        try:  # reap it if it became our zombie (it is not: it belonged to the killed group)
            os.waitpid(call["child"], os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        os.kill(call["child"], signal.SIGKILL)
        pytest.fail("the codex child process survived the timeout")


def test_stream_yields_reasoning_then_text(fake_codex: Path) -> None:
    s = dsrs.LM("codex:gpt-5-codex").stream("hi")
    assert list(s) == ["hello there codex"]
    assert s.reasoning == "**Answering briefly**"
    assert s.response is not None and s.response.usage.total_tokens == 6325 + 38


def test_missing_binary_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEX_BIN", str(tmp_path / "no-such-codex"))
    with pytest.raises(errors.ProviderUnavailableError, match="codex CLI not found"):
        dsrs.LM("codex:x").call("hi")


def test_classifier_is_anchored_on_codex_wording() -> None:
    assert type(classify_codex_error("unexpected status 403 Forbidden: nope")) is errors.PermissionDeniedError
    assert type(classify_codex_error("unexpected status 404 Not Found: model")) is errors.InvalidRequestError
    assert (
        type(classify_codex_error("exceeded retry limit, last status: 502 Bad Gateway"))
        is errors.ProviderUnavailableError
    )
    # a message that merely mentions a status somewhere is not classified by it
    assert type(classify_codex_error("the model said: unexpected status 429")) is errors.LMError


def test_parse_events_and_render_prompt() -> None:
    run = parse_events((FIXTURES / "ok.jsonl").read_text().splitlines())
    assert run.completed and run.messages == ["Let me check.", "hello there codex"] and run.warnings
    assert render_prompt(dsrs.LM("fake:echo").build_request("solo").messages) == "solo"


# --- the real Codex CLI -------------------------------------------------------------------------

REAL_CODEX = find_codex()
needs_codex = pytest.mark.skipif(
    REAL_CODEX is None,
    reason="Codex CLI not installed (npm install @openai/codex into ${DSRS_CACHE_HOME:-~/.cache/dsrs}/npm)",
)


@pytest.fixture
def responses_server() -> Iterator[LoopbackServer]:
    with openai_server(call_tools=False) as srv:  # answer in text: Codex would run scripted tool calls
        yield srv


def real_lm(srv: LoopbackServer, home: Path, **kw: Any) -> dsrs.LM:
    provider = {
        "name": "loopback",
        "base_url": f"{srv.url}/v1",
        "env_key": "DSRS_LOOPBACK_KEY",
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
    }
    return dsrs.LM(
        "codex:loopback-model",
        config={"model_provider": "loopback", "model_providers.loopback": provider},
        codex_home=str(home),
        ignore_user_config=True,
        timeout=60,
        **kw,
    )


@needs_codex
@pytest.mark.integration
def test_real_codex_answers_with_usage(
    responses_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSRS_LOOPBACK_KEY", "sk-loopback-codex-123456789")
    lm = real_lm(responses_server, tmp_path)
    r = lm.call("hello from dsrs")
    assert r.text == "hello from dsrs"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.detail["codex_thread_id"]
    (req,) = [q for q in responses_server.requests if q.path.endswith("/responses")]
    assert req.headers["authorization"] == "Bearer sk-loopback-codex-123456789"
    assert req.json()["model"] == "loopback-model" and req.json()["stream"] is True
    # a second call is a fresh thread: the first prompt is not in its input
    r2 = lm.call("second question")
    assert r2.text == "second question" and r2.usage.detail["codex_thread_id"] != r.usage.detail["codex_thread_id"]
    last = [q for q in responses_server.requests if q.path.endswith("/responses")][-1]
    assert "hello from dsrs" not in json.dumps(last.json()["input"])


@needs_codex
@pytest.mark.integration
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided: sk-l***789.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            ),
            errors.AuthenticationError,
        ),
        (
            Reply(
                429,
                {
                    "error": {
                        "message": "You exceeded your current quota",
                        "type": "insufficient_quota",
                        "param": None,
                        "code": "insufficient_quota",
                    }
                },
            ),
            errors.QuotaExceededError,
        ),
        (
            Reply(
                429,
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
            ),
            errors.RateLimitError,
        ),
        (
            Reply(
                400,
                {
                    "error": {
                        "message": "maximum context length exceeded",
                        "type": "invalid_request_error",
                        "param": "input",
                        "code": "context_length_exceeded",
                    }
                },
            ),
            errors.ContextWindowExceededError,
        ),
    ],
)
def test_real_codex_failures_are_classified(
    responses_server: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reply: Reply,
    expected: type[errors.LMError],
) -> None:
    monkeypatch.setenv("DSRS_LOOPBACK_KEY", "sk-loopback-codex-123456789")
    responses_server.push(reply, reply, reply)
    with pytest.raises(expected):
        real_lm(responses_server, tmp_path).call("hi")


@needs_codex
@pytest.mark.integration
def test_real_codex_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import asyncio

    from dsrs_openai.codex import CodexProvider

    monkeypatch.setenv("CODEX_HOME", str(tmp_path))
    spec = next(s for s in dsrs.providers() if s.name == "codex")
    result = asyncio.run(CodexProvider.probe(spec, 10.0))
    assert result.configured is True and result.reachable is False and "not logged in" in result.detail
    monkeypatch.setenv("CODEX_API_KEY", "sk-x-0123456789")
    assert asyncio.run(CodexProvider.probe(spec, 10.0)).reachable is True


@needs_codex
@pytest.mark.integration
def test_real_codex_output_schema(
    responses_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSRS_LOOPBACK_KEY", "sk-loopback-codex-123456789")
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    r = real_lm(responses_server, tmp_path).call("Paris", response_format=ResponseFormat(name="reply", schema=schema))
    assert json.loads(r.text) == {"answer": "Paris"}
    sent = [q for q in responses_server.requests if q.path.endswith("/responses")][-1].json()
    assert sent["text"]["format"]["type"] == "json_schema" and sent["text"]["format"]["schema"]["required"] == [
        "answer"
    ]


@needs_codex
@pytest.mark.integration
class TestCodexConformance(ProviderConformance):
    """The conformance kit against the real Codex CLI and a loopback Responses server."""

    provider_name = "codex"
    http_wire = False  # a CLI subprocess; the key never leaves the environment it inherits
    supports_response_format = True
    priced = False  # "loopback-model" has no price

    @pytest.fixture
    def lm(self, responses_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dsrs.LM:
        monkeypatch.setenv("DSRS_LOOPBACK_KEY", "sk-loopback-codex-123456789")
        return real_lm(responses_server, tmp_path)


def test_key_echoed_by_codex_is_redacted(fake_codex: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "codexkey-0123456789abcdef"
    events = tmp_path / "echo.jsonl"
    msg = f"unexpected status 401 Unauthorized: Incorrect API key provided: {key}"
    events.write_text(json.dumps({"type": "turn.failed", "error": {"message": msg}}) + "\n")
    monkeypatch.setenv("FAKE_CODEX_EVENTS", str(events))
    with pytest.raises(errors.AuthenticationError) as info:
        dsrs.LM("codex:x", api_key=key).call("hi")
    assert key not in str(info.value) and key not in (info.value.body or "")
