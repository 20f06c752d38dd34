"""Every ```python block of packages/dsrs-dspy/README.md runs, against loopback OpenAI-wire servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsrs.testing import LoopbackServer, RecordedRequest, Reply

from .conftest import chat_bodies, chat_reply

README = Path(__file__).resolve().parents[2] / "packages" / "dsrs-dspy" / "README.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


@pytest.fixture
def flaky() -> Iterator[LoopbackServer]:
    """The "main" server: answers the first call, then is overloaded (so the mux fails over to "spare")."""
    calls = {"n": 0}
    overloaded = {"error": {"message": "overloaded", "type": "server_error", "code": None}}

    def reply(req: RecordedRequest) -> Reply:
        calls["n"] += 1
        return chat_reply(req) if calls["n"] == 1 else Reply(503, overloaded, {"content-type": "application/json"})

    with LoopbackServer(reply) as srv:
        yield srv


@pytest.mark.docs
def test_readme_blocks_run(
    flaky: LoopbackServer, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", f"{flaky.url}/v1")
    monkeypatch.setenv("SPARE_BASE_URL", f"{server.url}/v1")
    blocks = FENCE.findall(README.read_text())
    assert len(blocks) == 3
    namespace: dict[str, object] = {"__name__": "dsrs_dspy_readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # our own docs
    out = capsys.readouterr().out
    assert "answer to Why is the sky blue?" in out
    assert "answer to Still there?" in out and "spare " in out  # failed over, and said which lane
    assert "answer to Async?" in out and "answer to Streamed?" in out
    first = chat_bodies(flaky)[0]
    assert (first["temperature"], first["max_tokens"]) == (0.2, 256)
    assert len(chat_bodies(server)) == 3  # everything after the first call went to the spare
