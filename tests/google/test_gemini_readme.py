"""Every ```python block of packages/dsrs-google/README.md runs, against the loopback Gemini wire."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsrs.testing import LoopbackServer

README = Path(__file__).resolve().parents[2] / "packages" / "dsrs-google" / "README.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


@pytest.mark.docs
def test_readme_blocks_run(gemini_server: LoopbackServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", key)
    monkeypatch.setenv("GEMINI_BASE_URL", gemini_server.url)
    blocks = FENCE.findall(README.read_text())
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "dsrs_google_readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # our own docs
    assert any(r.path.endswith(":streamGenerateContent?alt=sse") for r in gemini_server.requests)
