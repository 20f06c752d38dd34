"""Fixtures and settings shared by every package's tests."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# The response cache, the usage ledger and the prompt log of the tests live in a directory of
# their own (removed at exit), never in the user's cache directory.
if "DSRS_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="dsrs-tests-")
    os.environ["DSRS_CACHE_DIR"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)

# Error-table and fault tests assert what one attempt raises, so a plain LM does not retry in the
# tests; the tests of retries themselves pass retries= explicitly (or clear this variable).
os.environ.setdefault("DSRS_RETRIES", "0")


import pytest


@pytest.fixture(autouse=True)
def _process_state_restored() -> object:
    """A test that installs shared state (a Redis cache, a configured LM) does not hand it to the
    next test, whose server may be gone: the runtime's cache and default settings come back."""
    from dsrs import _runtime

    rt = _runtime.runtime()
    saved = (rt.cache, rt.settings)
    yield
    rt = _runtime.runtime()
    rt.cache, rt.settings = saved
