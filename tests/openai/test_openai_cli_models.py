"""`dsrs models --provider openai`: dsrs-openai's models with their prices and where each price is
from (its own table first, genai-prices' catalog for the rest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_models_for_one_provider_include_its_catalog(tmp_path: Path) -> None:
    pytest.importorskip("genai_prices", reason="the dsrs-core[prices] extra is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DSRS_", "XDG_"))}
    env.update(DSRS_CACHE_DIR=str(tmp_path / "cache"), DSRS_CONFIG_DIR=str(tmp_path / "config"), HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "dsrs", "models", "--provider", "openai", "--no-live", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    assert rows["gpt-4o-mini"]["sources"] == ["default", "catalog"]
    assert rows["gpt-4o-mini"]["price_source"] == "package table"  # dsrs-openai's own table wins
    from_catalog = [r for r in rows.values() if r["price_source"] == "genai-prices"]
    assert from_catalog and all(r["input_usd_per_mtok"] is not None for r in from_catalog)
    assert {r["provider"] for r in rows.values()} == {"openai"}
