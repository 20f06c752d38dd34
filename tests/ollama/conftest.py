"""Fixtures for dsrs-ollama tests: a loopback server speaking Ollama's documented API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsrs.testing import LoopbackServer
from dsrs_ollama.testing import ollama_wire_server


@pytest.fixture(autouse=True)
def _no_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the developer's OLLAMA_HOST."""
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


@pytest.fixture
def ollama_server() -> Iterator[LoopbackServer]:
    with ollama_wire_server() as srv:
        yield srv
