"""The dsrs CLI, run as users run it: a subprocess (``python -m dsrs._cli``), loopback servers only.

Each test gets an empty home, cache and config directory, and an environment without any
provider's variables, so what ``auto_detect`` finds is exactly what the test sets up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs import errors
from dsrs._cli._exit import exit_code
from dsrs.testing import LoopbackServer, RecordedRequest, Reply, openai_chat_reply, openai_wire_server

Run = Callable[..., subprocess.CompletedProcess[str]]
SECRET = "sk-loopback-0123456789abcdefghij"


def _clean_env(tmp_path: Path) -> dict[str, str]:
    drop = {v for spec in dsrs.providers() for v in spec.env_vars}
    drop |= {"DSRS_MODEL", "DSRS_REDIS_URL", "DSRS_LOG", "DSRS_LEDGER", "DSRS_CACHE", "LLAMA_SERVER_BIN", "CODEX_BIN"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("XDG_", "DSRS_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        DSRS_CACHE_DIR=str(tmp_path / "cache"),
        DSRS_CONFIG_DIR=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        PYTHONIOENCODING="utf-8",
    )
    return env


@pytest.fixture
def run(tmp_path: Path) -> Run:
    base = _clean_env(tmp_path)

    def _run(
        *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dsrs._cli", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, **(env or {})},
        )

    return _run


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with openai_wire_server() as s:
        yield s


def _chat_requests(server: LoopbackServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


# --- dsrs ask --------------------------------------------------------------------------------


def test_ask_with_nothing_configured_answers_from_fake_and_says_so(run: Run) -> None:
    out = run("ask", "Capital of France?", "--timeout", "0.5")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Capital of France?\n"
    assert "no provider is configured and reachable" in out.stderr and "fake:echo" in out.stderr
    assert "tokens 4 in / 4 out / 8 total" in out.stderr and "12 msats" in out.stderr  # 1 + 2 msats a token


def test_ask_uses_the_lane_auto_detect_finds_streaming_by_default(run: Run, server: LoopbackServer) -> None:
    out = run("ask", "hello there world", env={"OPENAI_COMPATIBLE_BASE_URL": server.url})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello there world\n"
    assert "fake" not in out.stderr and "lane openai-compatible" in out.stderr
    (req,) = _chat_requests(server)
    body = req.json()
    assert body["stream"] is True and body["model"] == "loopback-model"  # the model the server listed


def test_ask_reads_stdin_and_system_prompt_no_stream(run: Run, server: LoopbackServer) -> None:
    out = run(
        "ask", "-s", "Answer briefly.", "--no-stream", "and this", stdin="piped text\n",
        env={"OPENAI_COMPATIBLE_BASE_URL": server.url},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (req,) = _chat_requests(server)
    body = req.json()
    assert body.get("stream") in (None, False)
    assert body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "piped text\n\nand this"},
    ]
    assert out.stdout == "piped text\n\nand this\n"


def test_ask_without_any_prompt_is_a_usage_error(run: Run) -> None:
    out = run("ask")
    assert out.returncode == 2
    assert "no prompt" in out.stderr and "Traceback" not in out.stderr


def test_ask_json_has_text_usage_and_lane(run: Run, server: LoopbackServer) -> None:
    out = run("ask", "two words", "--json", env={"OPENAI_COMPATIBLE_BASE_URL": server.url})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["text"] == "two words" and data["lane"] == "openai-compatible"
    assert data["usage"]["completion_tokens"] == 2


def test_ask_lane_picks_one_provider_and_names_an_unusable_one(run: Run, server: LoopbackServer) -> None:
    env = {"OPENAI_COMPATIBLE_BASE_URL": server.url, "DSRS_FAKE_LANE": "1"}
    out = run("ask", "--lane", "fake", "hi", env=env)
    assert out.returncode == 0, out.stderr
    assert "fake:echo lane fake" in out.stderr and not _chat_requests(server)
    # A provider of dsrs-core itself, so the test runs core-only: without its base URL it is unusable.
    out = run("ask", "--lane", "openai-compatible", "hi", env={"DSRS_FAKE_LANE": "1"})
    assert out.returncode == 2, out.stderr
    assert "'openai-compatible' is not usable: not configured: set OPENAI_COMPATIBLE_BASE_URL" in out.stderr
    out = run("ask", "--lane", "no-such-lane", "hi")
    assert out.returncode == 2 and "no such provider" in out.stderr


def test_ask_model_and_base_url_go_straight_to_the_server(run: Run, server: LoopbackServer) -> None:
    out = run("ask", "--model", "openai-compat:my-model", "--base-url", server.url, "--no-stream", "x y")
    assert out.returncode == 0, out.stderr
    assert _chat_requests(server)[0].json()["model"] == "my-model"


def test_unknown_model_is_one_clear_line_not_a_traceback(run: Run) -> None:
    out = run("ask", "x", "--model", "nonexistent-model-zz")
    assert out.returncode == 2
    assert "UnknownModelError" in out.stderr and "Traceback" not in out.stderr


# --- exit codes per error class ----------------------------------------------------------------


def _failing(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> LoopbackServer:
    def handler(req: RecordedRequest) -> Reply:
        if req.method == "GET":
            return openai_chat_reply(req)
        return Reply(status, body, headers={"content-type": "application/json", **(headers or {})})

    return LoopbackServer(handler)


# Bodies as in the OpenAI API reference's error object: {"error": {"message", "type", "param", "code"}}
# (https://platform.openai.com/docs/guides/error-codes).
@pytest.mark.parametrize(
    ("status", "error", "headers", "code", "name"),
    [
        (401, {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}, {}, 3, "AuthenticationError"),
        (429, {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}, {"retry-after": "7"}, 4, "RateLimitError"),
        (429, {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}, {}, 5, "QuotaExceededError"),
        (400, {"message": "maximum context length is 8192 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}, {}, 7, "ContextWindowExceededError"),
    ],
)  # fmt: skip
def test_each_error_class_has_its_exit_code(
    run: Run, status: int, error: dict[str, object], headers: dict[str, str], code: int, name: str
) -> None:
    with _failing(status, {"error": {"param": None, **error}}, headers) as srv:
        out = run("ask", "--model", "openai-compat:m", "--base-url", srv.url, "--no-stream", "hi")
    assert out.returncode == code, out.stderr
    assert name in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreachable_server_exits_6(run: Run) -> None:
    with LoopbackServer() as srv:
        url = srv.url  # a port that was just free and is closed now
    out = run("ask", "--model", "openai-compat:m", "--base-url", url, "--no-stream", "hi")
    assert out.returncode == 6, out.stderr
    assert "ProviderUnavailableError" in out.stderr and "Traceback" not in out.stderr


def test_a_failing_mux_exits_with_its_lanes_shared_code(run: Run) -> None:
    reply = {"error": {"message": "Incorrect API key", "type": "invalid_request_error", "code": "invalid_api_key"}}
    with _failing(401, reply) as srv:
        out = run("ask", "--no-stream", "hi", env={"OPENAI_COMPATIBLE_BASE_URL": srv.url})
    assert out.returncode == 3, out.stderr
    assert "AllLanesFailedError" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # nothing printed by the interpreter's shutdown


def test_a_budget_too_small_for_the_call_exits_5_before_anything_is_spent(run: Run, server: LoopbackServer) -> None:
    model = ("--model", "openai-compat:m", "--base-url", server.url, "--no-stream")
    out = run("ask", *model, "--budget-msats", "1000", "--max-tokens", "5", "hi")
    assert out.returncode == 5 and "is unknown, so a budget cannot bound it" in out.stderr  # no price: refused
    assert not [r for r in server.requests if r.method == "POST"]
    out = run("ask", "--model", "fake:echo", "--budget-msats", "1", "--max-tokens", "5", "hello world")
    assert out.returncode == 5 and "BudgetExceededError" in out.stderr and out.stdout == ""
    out = run("ask", "--model", "fake:echo", "--budget-msats", "100", "--max-tokens", "5", "hello world")
    assert out.returncode == 0 and out.stdout == "hello world\n"
    assert run("ask", "--budget-msats", "-1", "hi").returncode == 2


def test_exit_code_table() -> None:
    assert exit_code(errors.BudgetExceededError("over")) == 5
    assert exit_code(errors.PaymentError("refused")) == 5
    assert exit_code(errors.LMTimeoutError("slow")) == 6
    assert exit_code(errors.ResponseParseError("html")) == 8
    assert exit_code(errors.ContentFilterError("no")) == 7
    assert exit_code(errors.LMError("other")) == 1
    mixed = errors.AllLanesFailedError({"a": errors.RateLimitError("x"), "b": errors.AuthenticationError("y")})
    assert exit_code(mixed) == 1
    assert exit_code(errors.AllLanesFailedError({"a": errors.RateLimitError("x"), "b": "cooling down"})) == 1


# --- broken pipes, providers -------------------------------------------------------------------


def test_a_closed_stdout_exits_quietly(tmp_path: Path) -> None:
    env = {**_clean_env(tmp_path), "DSRS_FAKE_LANE": "1"}
    # Close the reading end before the child writes anything (it is still importing).
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsrs._cli", "providers", "--json", "--no-probe"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_providers_json_lists_core_providers_with_distribution(run: Run) -> None:
    out = run("providers", "--json", "--timeout", "1", env={"DSRS_FAKE_LANE": "1"})
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["fake"]["distribution"] == "dsrs-core" and rows["fake"]["configured"] is True
    assert rows["fake"]["reachable"] is True
    assert rows["openai-compatible"]["configured"] is False


def test_bad_arguments_exit_2_with_argparse_usage(run: Run) -> None:
    out = run("usage", "--by", "colour")
    assert out.returncode == 2 and "'colour' is not one of" in out.stderr
    out = run("nosuchcommand")
    assert out.returncode == 2 and "invalid choice" in out.stderr
