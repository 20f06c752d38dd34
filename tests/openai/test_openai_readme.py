"""Every ```python block of packages/dsrs-openai/README.md runs, against the loopback OpenAI wire."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import SECRET

README = Path(__file__).resolve().parents[2] / "packages" / "dsrs-openai" / "README.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


@pytest.mark.docs
def test_readme_blocks_run(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    blocks = FENCE.findall(README.read_text())
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "dsrs_openai_readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # our own docs
    kinds = [
        part["type"]
        for r in server.requests
        for m in r.json().get("messages", [])
        if isinstance(m.get("content"), list)
        for part in m["content"]
    ]
    assert "image_url" in kinds and "file" in kinds
    assert any(r.json().get("service_tier") == "flex" for r in server.requests)
