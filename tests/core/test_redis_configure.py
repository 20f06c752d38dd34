"""dsrs.configure(..., state=RedisState(url)) and DSRS_REDIS_URL wire a LaneMux to shared state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("redis", reason="the dsrs-core[redis] extra is not installed")

import dsrs
from dsrs import _settings as settings
from dsrs._cache import set_cache
from dsrs._redis_state import RedisState, RedisUnavailableError
from dsrs._redis_state.testing import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DSRS_REDIS_URL", "DSRS_REDIS_NAMESPACE", "DSRS_REDIS_FAIL_OPEN"):
        monkeypatch.delenv(name, raising=False)
    yield
    settings.reset()
    settings._env_states.clear()
    set_cache(None)


def _mux() -> dsrs.LaneMux:
    return dsrs.LaneMux().add_lane("a", dsrs.LM("fake:echo")).add_lane("b", dsrs.LM("fake:echo"))


def test_configure_with_state_attaches_the_mux(redis_server: RedisServer) -> None:
    state = RedisState(redis_server.url, namespace=f"t-{uuid.uuid4().hex}")
    mux = _mux()
    dsrs.configure(mux, state=state)
    assert mux.state is state.lanes and mux.budgets is state.budgets
    state.uninstall()


def test_dsrs_redis_url_is_used_by_configure(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_REDIS_URL", redis_server.url)
    monkeypatch.setenv("DSRS_REDIS_NAMESPACE", f"t-{uuid.uuid4().hex}")
    mux = _mux()
    dsrs.configure(mux)
    state = settings._env_states[redis_server.url]
    assert isinstance(state, RedisState) and mux.state is state.lanes
    state.uninstall()  # type: ignore[attr-defined]


def test_unreachable_redis_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_REDIS_URL", "redis://127.0.0.1:9/0")
    with pytest.raises(RedisUnavailableError, match="DSRS_REDIS_URL"):
        dsrs.configure(_mux())
