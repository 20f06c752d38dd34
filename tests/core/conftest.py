"""Fixtures shared by the core tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Any]:
    """A real redis-server on a free loopback port for the module (via scripts/redis-server.sh)."""
    pytest.importorskip("redis", reason="the dsrs-core[redis] extra is not installed")
    from dsrs._redis_state.testing import RedisServer, RedisServerUnavailable

    try:
        server = RedisServer().start()
    except RedisServerUnavailable as exc:
        pytest.skip(f"no redis-server here: {exc}")
    yield server
    server.stop()
