"""Fixtures for dsrs-anthropic tests: a loopback server speaking the Messages API wire, clean env."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsrs.testing import LoopbackServer
from dsrs_anthropic.testing import anthropic_wire_server

#: A key shaped like a real one (sk-ant-...), so redaction of both the exact value and the shape is tested.
KEY = "sk-ant-api03-TESTdsrs0123456789abcdefghijklmnopqrstuv"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's key or base URL."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anthropic_server() -> Iterator[LoopbackServer]:
    with anthropic_wire_server(api_keys=[KEY]) as srv:
        yield srv


@pytest.fixture
def key() -> str:
    return KEY
