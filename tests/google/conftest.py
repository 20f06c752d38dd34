"""Fixtures for dsrs-google tests: a loopback server speaking the Gemini API wire, clean env."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsrs.testing import LoopbackServer
from dsrs_google.testing import gemini_wire_server

#: A key shaped like a real one (AIza...), so redaction of both the exact value and the shape is tested.
KEY = "AIzaSyTEST-dsrs-0123456789abcdefghijk"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's keys or base URL."""
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gemini_server() -> Iterator[LoopbackServer]:
    with gemini_wire_server(api_keys=[KEY]) as srv:
        yield srv


@pytest.fixture
def key() -> str:
    return KEY
