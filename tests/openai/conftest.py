"""Fixtures for dsrs-openai tests: a clean environment and a loopback server speaking OpenAI's wire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsrs.testing import LoopbackServer
from dsrs_openai.catalog import VENDORS
from dsrs_openai.testing import openai_server

SECRET = "sk-test-secret-abcdef0123456789"

_ENV = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT_ID",
    "OPENAI_PROJECT",
    "CODEX_BIN",
    "CODEX_API_KEY",
    "CODEX_HOME",
    *(e for v in VENDORS for e in (*v.api_key_env, *v.base_url_env)),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key or endpoint from the developer's shell can leak into a test."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with openai_server() as srv:
        yield srv
