"""Every ```python block of packages/dsrs-ollama/README.md runs, against the loopback Ollama API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsrs.testing import LoopbackServer

README = Path(__file__).resolve().parents[2] / "packages" / "dsrs-ollama" / "README.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


@pytest.mark.docs
def test_readme_blocks_run(ollama_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    blocks = FENCE.findall(README.read_text())
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "dsrs_ollama_readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # our own docs
    bodies = [r.json() for r in ollama_server.requests if r.path == "/api/chat"]
    assert bodies[0]["options"] == {"num_ctx": 8192}
    assert bodies[1]["stream"] is True and bodies[1]["options"] == {"num_ctx": 8192, "num_predict": 200}
