"""Every ```python block of packages/dsrs-anthropic/README.md runs, against the loopback Messages API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsrs.testing import LoopbackServer

README = Path(__file__).resolve().parents[2] / "packages" / "dsrs-anthropic" / "README.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


@pytest.mark.docs
def test_readme_blocks_run(anthropic_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    blocks = FENCE.findall(README.read_text())
    assert len(blocks) >= 6
    namespace: dict[str, object] = {"__name__": "dsrs_anthropic_readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # our own docs
    paths = [r.path.partition("?")[0] for r in anthropic_server.requests]
    assert "/v1/messages" in paths and "/v1/models" in paths
    assert any(r.json() and r.json().get("stream") for r in anthropic_server.requests if r.method == "POST")
