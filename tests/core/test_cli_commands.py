"""The dsrs CLI, run as users run it (a subprocess of the installed console script's module)."""

from __future__ import annotations

import json
import subprocess
import sys


def _dsrs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "dsrs._cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_providers_json_lists_core_providers_with_distribution() -> None:
    out = _dsrs("providers", "--json", "--timeout", "1", env={"DSRS_FAKE_LANE": "1"})
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["fake"]["distribution"] == "dsrs-core" and rows["fake"]["configured"] is True
    assert rows["fake"]["reachable"] is True
    assert rows["openai-compatible"]["configured"] is False


def test_ask_prints_answer_and_usage() -> None:
    out = _dsrs("ask", "Capital of France?", "--model", "fake:echo")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Capital of France?"
    assert "tokens 4 in / 4 out / 8 total" in out.stderr and "12 msats" in out.stderr  # 1 + 2 msats a token


def test_ask_json() -> None:
    out = _dsrs("ask", "hello", "--model", "fake:echo", "--json")
    data = json.loads(out.stdout)
    assert data["text"] == "hello" and data["usage"]["cost_msats"] == 3 and data["provider"] == "fake"


def test_unknown_model_is_one_clear_line_not_a_traceback() -> None:
    out = _dsrs("ask", "x", "--model", "nonexistent-model-zz")
    assert out.returncode == 2
    assert "UnknownModelError" in out.stderr and "Traceback" not in out.stderr
