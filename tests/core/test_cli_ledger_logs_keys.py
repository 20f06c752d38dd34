"""``dsrs usage`` (local ledger), ``dsrs logs``, ``dsrs keys`` and ``dsrs models``, through subprocesses.

Loopback servers only; each test has its own empty home, cache and config directory.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs.testing import LoopbackServer, RecordedRequest, Reply, openai_chat_reply, openai_wire_server

Run = Callable[..., subprocess.CompletedProcess[str]]
SECRET = "sk-loopback-0123456789abcdefghij"


@pytest.fixture
def run(tmp_path: Path) -> Run:
    drop = {v for spec in dsrs.providers() for v in spec.env_vars}
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("XDG_", "DSRS_")) and k not in ("LLAMA_SERVER_BIN", "CODEX_BIN")
    }
    base.update(
        HOME=str(tmp_path / "home"),
        DSRS_CACHE_DIR=str(tmp_path / "cache"),
        DSRS_CONFIG_DIR=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        PYTHONIOENCODING="utf-8",
    )

    def _run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dsrs._cli", *args],
            input=stdin,
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


def _files(directory: Path, prefix: str) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob(f"{prefix}*"))


# --- dsrs usage --------------------------------------------------------------------------------


def test_usage_without_redis_reads_the_local_ledger(run: Run, server: LoopbackServer, tmp_path: Path) -> None:
    env = {"OPENAI_COMPATIBLE_BASE_URL": server.url}
    assert run("ask", "the okapi-narwhal question", env=env).returncode == 0
    assert run("ask", "--model", "fake:echo", "three more words").returncode == 0
    out = run("usage", "--json", "--by", "provider,model")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {(r["provider"], r["model"]): r for r in report["rows"]}
    assert rows[("openai-compatible", "loopback-model")]["calls"] == 1
    assert rows[("openai-compatible", "loopback-model")]["prompt_tokens"] == 3  # the server counts words
    assert rows[("fake", "echo")]["cost_msats"] > 0 and report["total"]["calls"] == 2
    assert b"narwhal" not in _files(tmp_path / "cache", "usage.sqlite3")
    if sys.platform != "win32":
        assert stat.S_IMODE((tmp_path / "cache" / "usage.sqlite3").stat().st_mode) == 0o600
    text = run("usage", "--by", "model")
    assert text.returncode == 0 and "loopback-model" in text.stdout and "total" in text.stdout
    assert json.loads(run("usage", "--json", "--since", "1h").stdout)["total"]["calls"] == 2
    assert json.loads(run("usage", "--json", "--since", "2999-01-01").stdout)["total"]["calls"] == 0


def test_usage_argument_errors_exit_2(run: Run) -> None:
    out = run("usage", "--since", "last tuesday")
    assert out.returncode == 2 and "--since 'last tuesday'" in out.stderr
    out = run("usage", "--by", "provider,colour")
    assert out.returncode == 2 and "'colour' is not one of day, provider, lane, model, error" in out.stderr


def test_ledger_off_records_nothing(run: Run, tmp_path: Path) -> None:
    assert run("ask", "--model", "fake:echo", "hi", env={"DSRS_LEDGER": "0"}).returncode == 0
    assert not (tmp_path / "cache" / "usage.sqlite3").exists()


# --- dsrs logs ---------------------------------------------------------------------------------


def test_logs_are_off_by_default_then_on_then_off(run: Run, server: LoopbackServer, tmp_path: Path) -> None:
    env = {"OPENAI_COMPATIBLE_BASE_URL": server.url}
    assert run("ask", "not logged", env=env).returncode == 0
    assert not (tmp_path / "cache" / "logs.sqlite3").exists()
    assert "the log is off" in run("logs").stdout
    assert run("logs", "on").returncode == 0
    assert run("ask", "-s", "Be brief.", "first logged prompt", env=env).returncode == 0
    assert run("ask", "second logged prompt", "--no-stream", env=env).returncode == 0
    entries = json.loads(run("logs", "-n", "5", "--json").stdout)
    assert [e["response"] for e in entries] == ["first logged prompt", "second logged prompt"]
    first = entries[0]
    assert first["request"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first logged prompt"},
    ]
    assert first["provider"] == "openai-compatible" and first["usage"]["completion_tokens"] == 3
    newest = run("logs", "-n", "1")
    assert "second logged prompt" in newest.stdout and "first logged prompt" not in newest.stdout
    if sys.platform != "win32":
        assert stat.S_IMODE((tmp_path / "cache" / "logs.sqlite3").stat().st_mode) == 0o600
    assert run("logs", "off").returncode == 0
    assert run("ask", "after off", env=env).returncode == 0
    assert json.loads(run("logs", "status", "--json").stdout)["entries"] == 2
    assert json.loads(run("logs", "status", "--json", env={"DSRS_LOG": "1"}).stdout)["on"] is True


def test_logs_never_store_keys(run: Run, server: LoopbackServer, tmp_path: Path) -> None:
    stored = "stored-secret-value-0123456789"
    assert run("keys", "set", "openai-compatible", stdin=stored + "\n").returncode == 0
    env = {"OPENAI_COMPATIBLE_BASE_URL": server.url, "DSRS_LOG": "1"}
    prompt = f"my key is {stored} and also {SECRET} and Bearer abcdefghijklmnop"
    out = run("ask", prompt, env=env)
    assert out.returncode == 0, out.stderr
    assert server.requests[-1].headers.get("authorization") == f"Bearer {stored}"  # the key was used ...
    blob = _files(tmp_path / "cache", "logs.sqlite3")
    assert b"my key is" in blob  # ... the prompt was logged ...
    assert stored.encode() not in blob and SECRET.encode() not in blob and b"abcdefghijklmnop" not in blob
    assert stored not in run("logs", "--json").stdout  # ... and no key appears anywhere


# --- dsrs keys ---------------------------------------------------------------------------------


def test_keys_set_list_path_and_the_environment_wins(run: Run, server: LoopbackServer, tmp_path: Path) -> None:
    out = run("keys", "set", "openai-compatible", stdin=SECRET + "\n")
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr and "OPENAI_COMPATIBLE_API_KEY" in out.stderr
    path = Path(run("keys", "path").stdout.strip())
    assert path == tmp_path / "config" / "keys.json"
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = run("keys", "list")
    assert "OPENAI_COMPATIBLE_API_KEY" in listed.stdout and SECRET not in listed.stdout
    rows = json.loads(run("keys", "list", "--json").stdout)["keys"]
    assert rows == [{"name": "OPENAI_COMPATIBLE_API_KEY", "value": "****ghij", "overridden_by_environment": False}]
    env = {"OPENAI_COMPATIBLE_BASE_URL": server.url}
    assert run("ask", "hi", env=env).returncode == 0
    assert server.requests[-1].headers.get("authorization") == f"Bearer {SECRET}"
    assert run("ask", "hi", env={**env, "OPENAI_COMPATIBLE_API_KEY": "env-key-wins"}).returncode == 0
    assert server.requests[-1].headers.get("authorization") == "Bearer env-key-wins"
    assert "removed" in run("keys", "unset", "OPENAI_COMPATIBLE_API_KEY").stdout
    assert json.loads(run("keys", "list", "--json").stdout)["keys"] == []


def test_keys_usage_errors(run: Run) -> None:
    out = run("keys", "set", "fake", stdin="x\n")  # dsrs-core's own provider: the test runs core-only
    assert out.returncode == 2 and "takes no API key" in out.stderr
    out = run("keys", "set", "not a name", stdin="x\n")
    assert out.returncode == 2 and "neither a provider" in out.stderr
    out = run("keys", "set", "ACME_API_KEY", stdin="one\ntwo\n")
    assert out.returncode == 2 and "one line" in out.stderr and "two" not in out.stderr
    out = run("keys", "set")
    assert out.returncode == 2 and "needs a name" in out.stderr


# --- dsrs models -------------------------------------------------------------------------------


def test_models_lists_defaults_and_live_models_with_prices(run: Run, server: LoopbackServer) -> None:
    out = run("models", "--json", env={"OPENAI_COMPATIBLE_BASE_URL": server.url})
    assert out.returncode == 0, out.stderr
    rows = {(r["provider"], r["model"]): r for r in json.loads(out.stdout)}
    live = rows[("openai-compatible", "loopback-model")]
    assert live["sources"] == ["live"] and live["input_usd_per_mtok"] is None
    fake = rows[("fake", "echo")]
    assert fake["sources"] == ["default"]
    assert (fake["input_usd_per_mtok"], fake["output_usd_per_mtok"]) == (1.0, 2.0)  # 1 and 2 msats a token
    assert fake.get("price_source", "package table") == "package table"
    assert ("openai", "gpt-4o-mini") not in rows or rows[("openai", "gpt-4o-mini")]["sources"] == ["default"]
    one = run("models", "--provider", "openai-compatible", env={"OPENAI_COMPATIBLE_BASE_URL": server.url})
    assert one.returncode == 0 and "openai-compatible:loopback-model" in one.stdout and "fake:" not in one.stdout
    assert run("models", "--provider", "nope").returncode == 2


def test_models_survives_a_hostile_models_list(run: Run) -> None:
    def handler(req: RecordedRequest) -> Reply:
        if req.method == "GET":
            items = [{"id": 7}, {"id": "ok-model"}, "string", {"id": "x" * 5000}, None, {"id": "\x1b]0;pwned\x07evil"}]
            return Reply(200, {"object": "list", "data": items})
        return openai_chat_reply(req)

    with LoopbackServer(handler) as srv:
        out = run("models", "-p", "openai-compatible", "--json", env={"OPENAI_COMPATIBLE_BASE_URL": srv.url})
        table = run("models", "-p", "openai-compatible", env={"OPENAI_COMPATIBLE_BASE_URL": srv.url})
    assert out.returncode == 0, out.stderr
    assert [r["model"] for r in json.loads(out.stdout)] == ["ok-model", "\x1b]0;pwned\x07evil"]
    out = table
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "\ufffd]0;pwned\ufffdevil" in out.stdout
    with LoopbackServer(lambda req: Reply(200, "<html>not json</html>")) as srv:
        out = run("models", "-p", "openai-compatible", env={"OPENAI_COMPATIBLE_BASE_URL": srv.url})
    assert out.returncode == 0 and "not JSON" in out.stderr and "Traceback" not in out.stderr


def test_failed_attempts_are_recorded_with_their_error_class(run: Run, tmp_path: Path) -> None:
    # The error object of the OpenAI API reference (https://platform.openai.com/docs/guides/error-codes).
    body = {
        "error": {"message": f"Incorrect API key {SECRET}", "type": "invalid_request_error", "code": "invalid_api_key"}
    }

    def handler(req: RecordedRequest) -> Reply:
        return openai_chat_reply(req) if req.method == "GET" else Reply(401, body)

    with LoopbackServer(handler) as srv:
        out = run("ask", "a failing prompt", env={"OPENAI_COMPATIBLE_BASE_URL": srv.url, "DSRS_LOG": "1"})
    assert out.returncode == 3 and SECRET not in out.stderr
    report = json.loads(run("usage", "--json", "--by", "provider,error").stdout)
    (row,) = report["rows"]
    assert (row["provider"], row["error"], row["calls"], row["errors"]) == (
        "openai-compatible",
        "AuthenticationError",
        0,
        1,
    )
    (entry,) = json.loads(run("logs", "--json").stdout)
    assert entry["error"] == "AuthenticationError" and entry["request_id"]
    assert entry["request"]["messages"] == [{"role": "user", "content": "a failing prompt"}]
    assert SECRET.encode() not in _files(tmp_path / "cache", "logs.sqlite3")
