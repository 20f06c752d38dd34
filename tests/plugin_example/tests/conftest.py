"""Fixtures: a loopback server speaking the Acme wire, and an environment without real keys."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

# These tests need the example installed (its entry point registers the provider); the nox
# `plugin` session installs it into a venv holding only dsrs-core.
if importlib.util.find_spec("dsrs_acme_example") is None:
    collect_ignore_glob = ["test_*.py"]

KEY = "acme-test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's key or base URL."""
    for name in ("ACME_API_KEY", "ACME_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def acme_server() -> Iterator[object]:
    from dsrs_acme_example.testing import acme_wire_server

    with acme_wire_server(api_keys=[KEY]) as srv:
        yield srv
