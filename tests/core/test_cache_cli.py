"""``dsrs cache stats`` / ``dsrs cache clear``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs._cache import set_cache
from dsrs._cli import main


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DSRS_CACHE", raising=False)
    set_cache(None)
    yield tmp_path
    set_cache(None)


def test_stats_then_clear(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lm = dsrs.LM("fake:echo", cache=True)
    lm.call("one")
    lm.call("two")
    set_cache(None)  # as a new process would see it
    assert main(["cache", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["disk"]["entries"] == 2
    assert stats["disk"]["path"] == str(cache_dir / "responses.sqlite3")
    assert main(["cache", "clear"]) == 0
    assert "cache cleared" in capsys.readouterr().out
    assert main(["cache", "stats"]) == 0
    out = capsys.readouterr().out
    assert "entries: 0" in out and str(cache_dir) in out


def test_clear_recreates_a_corrupt_file(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cache_dir / "responses.sqlite3").write_bytes(b"garbage" * 500)
    assert main(["cache", "stats"]) == 0
    assert "DatabaseError" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    set_cache(None)
    lm = dsrs.LM("fake:echo", cache=True)
    lm.call("x")
    set_cache(None)
    assert lm.call("x").cache_hit
