"""Fixtures for the gptoss tests: models come through dsrs-gptoss's install code, servers run on each
engine (:data:`dsrs_gptoss.testing.ENGINES`).

Server fixtures are parametrized by engine: the prebuilt xllamacpp engine always, and a llama-server
binary where one exists (``LLAMA_SERVER_BIN``, PATH, or ``dsrs-gptoss install --from-source``);
without one those cases are skipped with the reason. Nothing is built here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dsrs_gptoss import server as srv
from dsrs_gptoss import testing
from dsrs_gptoss.server import Engine, LlamaServer


@pytest.fixture(scope="session", params=testing.ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    try:
        return testing.engine(request.param)
    except LookupError as exc:
        pytest.skip(f"no {request.param} engine: {exc}")


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return testing.tiny_gguf()


@pytest.fixture(scope="session")
def smol_model() -> Path:
    return testing.smollm2()


@pytest.fixture(scope="session")
def tiny_server(engine: Engine, tiny_model: Path) -> Iterator[LlamaServer]:
    with testing.running_server(tiny_model, engine=engine, ctx_size=4096) as server:
        yield server


@pytest.fixture(scope="session")
def smol_server(engine: Engine, smol_model: Path) -> Iterator[LlamaServer]:
    with testing.running_server(smol_model, engine=engine, ctx_size=2048) as server:
        yield server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No GPTOSS/LLAMA env vars, a fresh HOME and cache dir; servers auto-started here are stopped after."""
    for name in ("GPTOSS_BASE_URL", "LLAMA_MODEL_PATH", "LLAMA_SERVER_BIN", "GPTOSS_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSRS_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "home").mkdir()
    yield tmp_path
    srv.stop_auto_started_servers()


@pytest.fixture
def use_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Make auto-start pick ``engine`` (GPTOSS_ENGINE, and LLAMA_SERVER_BIN for a binary)."""
    monkeypatch.setenv("GPTOSS_ENGINE", engine.kind)
    if engine.kind == "llama-server":
        monkeypatch.setenv("LLAMA_SERVER_BIN", engine.argv[0])
    return engine


@pytest.fixture(scope="session")
def harmony_server(engine: Engine) -> Iterator[LlamaServer]:
    """The tiny model with a Harmony template: llama-server treats it as gpt-oss (reasoning_content)."""
    with testing.running_server(testing.tiny_harmony_gguf(), engine=engine) as server:
        yield server
