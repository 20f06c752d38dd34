"""Fixtures and settings shared by every package's tests."""

from __future__ import annotations

import os

# Error-table and fault tests assert what one attempt raises, so a plain LM does not retry in the
# tests; the tests of retries themselves pass retries= explicitly (or clear this variable).
os.environ.setdefault("DSRS_RETRIES", "0")
