"""Every ```python block in README.md and docs/ runs, so the docs cannot drift from the code.

Blocks of one file run in order in one namespace (like a notebook); top-level ``await`` works.
Vendors that cannot run here are loopback servers speaking their wire, reached through the same
environment variables users set (``OPENAI_BASE_URL``, ``GROQ_BASE_URL``, ``OLLAMA_HOST``,
``ANTHROPIC_BASE_URL``), so
the documented calls really go over HTTP.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsrs.testing import LoopbackServer, RecordedRequest, Reply, openai_chat_reply

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "dev" not in p.parts)]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def _blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in FENCE.finditer(text)]


def _ollama_reply(req: RecordedRequest) -> Reply:
    """Just enough of Ollama's native API (docs/api.md) for documented examples."""
    if req.path == "/api/tags":
        return Reply(200, {"models": [{"name": "llama2:latest", "model": "llama2:latest", "size": 1}]})
    body = req.json() or {}
    last = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"][-1:]
    text = last[0] if last else ""
    return Reply(
        200,
        {
            "model": body.get("model"),
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": text},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 5,
            "eval_count": len(text.split()),
        },
    )


@pytest.fixture(scope="module")
def vendors() -> Iterator[dict[str, str]]:
    from dsrs_anthropic.testing import anthropic_wire_server

    with (
        LoopbackServer(openai_chat_reply) as openai,
        LoopbackServer(_ollama_reply) as ollama,
        anthropic_wire_server() as anthropic,
    ):
        yield {
            "OPENAI_BASE_URL": openai.url + "/v1",
            "OPENAI_API_KEY": "sk-docs-test-key-000000",
            "GROQ_BASE_URL": openai.url + "/openai/v1",
            "GROQ_API_KEY": "gsk_docstestkey000000",
            "OLLAMA_HOST": ollama.url,
            "ANTHROPIC_BASE_URL": anthropic.url,
            "ANTHROPIC_API_KEY": "sk-ant-docs-test-key-000000",
        }


@pytest.mark.docs
@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(
    path: Path, vendors: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocks = _blocks(path)
    if not blocks:
        pytest.skip("no python blocks")
    for key, value in vendors.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DSRS_FAKE_LANE", "1")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}

    async def run_all() -> None:
        for line, code in blocks:
            try:
                compiled = compile(code, f"{path.name}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                result = eval(compiled, namespace)
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                raise AssertionError(f"{path.name} block at line {line} failed: {type(exc).__name__}: {exc}") from exc

    asyncio.run(run_all())


def test_docs_are_found() -> None:
    assert (ROOT / "README.md") in DOCS
    assert json.dumps([str(p) for p in DOCS])  # the list is plain data
