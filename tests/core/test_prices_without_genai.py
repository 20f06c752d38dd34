"""Without the ``prices`` extra (e.g. on Python 3.10, which genai-prices 0.2 does not support) the
fallback is silent: models no table lists cost ``None`` (unknown), and tables still price theirs."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

import dsrs
from dsrs import _prices
from dsrs.plugins import hooks
from dsrs.testing import isolated_plugins


@pytest.fixture(autouse=True)
def without_genai_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # `import genai_prices` raises ImportError
    _prices._genai_prices.cache_clear()
    _prices._known.cache_clear()
    with isolated_plugins():
        yield
    _prices._genai_prices.cache_clear()
    _prices._known.cache_clear()


def test_unlisted_models_stay_unknown() -> None:
    assert not _prices.genai_prices_available()
    assert hooks().cost("openai:gpt-4o", dsrs.LmUsage.from_tokens(10, 10)) is None
    assert _prices.price_source("openai", "gpt-4o") is None


def test_tables_still_price_their_models() -> None:
    assert hooks().cost("fake:echo", dsrs.LmUsage.from_tokens(10, 10)) == dsrs.Cost(msats=30)
    assert _prices.price_source("fake", "echo") == "package table"
