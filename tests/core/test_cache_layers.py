"""The response cache: keys, layers, SQLite file safety, processes, corruption, locks."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs._cache import CacheWarning, LayeredCache, MemoryCache, NullCache, get_cache, set_cache
from dsrs._cache.sqlite import SQLiteCache, default_cache_dir
from dsrs._usage import LmUsage
from dsrs.testing import Reply, openai_wire_server
from dsrs.types import LMResponse, ResponseFormat, Tool


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DSRS_CACHE", raising=False)
    set_cache(None)
    yield tmp_path / "cache"
    set_cache(None)


def response(text: str = "hi") -> LMResponse:
    return LMResponse(text=text, usage=LmUsage.from_tokens(3, 1).with_cost(dsrs.Cost(msats=5)), provider="fake")


# --- keys ----------------------------------------------------------------------------------------


def test_every_wire_parameter_changes_the_key() -> None:
    base = dsrs.LM("fake:echo")
    keys = {
        "base": base.build_request("same prompt").cache_key(),
        "num_ctx": base.with_num_ctx(4096).build_request("same prompt").cache_key(),
        "num_ctx2": base.with_num_ctx(8192).build_request("same prompt").cache_key(),
        "temperature": base.with_temperature(0.2).build_request("same prompt").cache_key(),
        "temperature2": base.with_temperature(0.3).build_request("same prompt").cache_key(),
        "max_tokens": base.with_max_tokens(5).build_request("same prompt").cache_key(),
        "seed": base.with_seed(1).build_request("same prompt").cache_key(),
        "stop": base.with_stop("x").build_request("same prompt").cache_key(),
        "model": dsrs.LM("fake:other").build_request("same prompt").cache_key(),
        "base_url": dsrs.LM("m", base_url="http://127.0.0.1:1").build_request("same prompt").cache_key(),
        "response_format": base.build_request(
            "same prompt", response_format=ResponseFormat(schema={"type": "object"})
        ).cache_key(),
        "tools": base.build_request("same prompt", tools=[Tool("f")]).cache_key(),
        "system": base.build_request(
            [{"role": "system", "content": "s"}, {"role": "user", "content": "same prompt"}]
        ).cache_key(),
        "prompt": base.build_request("other prompt").cache_key(),
    }
    assert len(set(keys.values())) == len(keys)


def test_api_key_is_not_part_of_the_key() -> None:
    a = dsrs.LM("m", base_url="http://127.0.0.1:1", api_key="sk-aaaaaaaaaaaaaaaa")
    b = a.with_api_key("sk-bbbbbbbbbbbbbbbb")
    assert a.build_request("p").cache_key() == b.build_request("p").cache_key()
    assert "sk-" not in str(a.build_request("p").canonical())


# --- through an LM -------------------------------------------------------------------------------


async def test_hits_are_marked_and_cost_nothing() -> None:
    lm = dsrs.LM("fake:echo").with_cache(True)
    first = await lm.acall("hello cache")
    second = await lm.acall("hello cache")
    assert not first.cache_hit and first.usage.cost_msats == 2 + 2 * 2  # fake prices: 1 msat in, 2 out
    assert second.cache_hit and second.usage.cost_msats == 0 and second.usage.cost_usd == 0
    assert second.text == first.text and second.usage.total_tokens == first.usage.total_tokens


async def test_same_prompt_different_num_ctx_or_temperature_are_different_entries() -> None:
    with openai_wire_server() as srv:
        lm = dsrs.LM("m", base_url=srv.url, cache=True)
        for variant in (lm, lm.with_num_ctx(2048), lm.with_num_ctx(4096), lm.with_temperature(0.5), lm):
            await variant.acall("same prompt")
        assert len(srv.requests) == 4  # the last call was a hit
        assert [r.json().get("num_ctx") for r in srv.requests] == [None, 2048, 4096, None]


async def test_errors_are_never_cached() -> None:
    with openai_wire_server() as srv:
        lm = dsrs.LM("m", base_url=srv.url, cache=True)
        srv.push(Reply(500, {"error": {"message": "boom", "type": "server_error"}}))
        with pytest.raises(dsrs.ProviderUnavailableError):
            await lm.acall("p")
        ok = await lm.acall("p")
        assert not ok.cache_hit and ok.text == "p"
        assert (await lm.acall("p")).cache_hit
        assert len(srv.requests) == 2


async def test_the_default_cache_is_memory_over_sqlite_in_dsrs_cache_dir(cache_dir: Path) -> None:
    lm = dsrs.LM("fake:echo").with_cache(True)
    await lm.acall("persist me")
    cache = get_cache()
    assert isinstance(cache, LayeredCache)
    assert isinstance(cache.back, SQLiteCache)
    assert cache.back.path == cache_dir / "responses.sqlite3"
    # A new process (simulated: a fresh default cache) finds it on disk.
    set_cache(None)
    hit = await lm.acall("persist me")
    assert hit.cache_hit
    stats = await get_cache().astats()
    assert stats["disk"]["entries"] == 1


def test_cache_modes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRS_CACHE", "memory")
    set_cache(None)
    assert isinstance(get_cache(), MemoryCache)
    monkeypatch.setenv("DSRS_CACHE", "off")
    set_cache(None)
    assert isinstance(get_cache(), NullCache)
    assert dsrs.LM("fake:echo", cache=True).call("x").cache_hit is False
    assert dsrs.LM("fake:echo", cache=True).call("x").cache_hit is False


def test_default_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DSRS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == tmp_path / "xdg" / "dsrs"


# --- layers --------------------------------------------------------------------------------------


async def test_memory_lru_evicts_the_least_recently_used() -> None:
    mem = MemoryCache(max_entries=2)
    await mem.aset("a", response("a"))
    await mem.aset("b", response("b"))
    assert await mem.aget("a") is not None  # a is now the most recent
    await mem.aset("c", response("c"))
    assert await mem.aget("b") is None
    assert await mem.aget("a") is not None and await mem.aget("c") is not None


async def test_layered_promotes_disk_hits_to_memory(tmp_path: Path) -> None:
    disk = SQLiteCache(tmp_path / "x.sqlite3")
    await disk.aset("k", response("from disk"))
    layered = LayeredCache(MemoryCache(), disk)
    hit = await layered.aget("k")
    assert hit is not None and hit.text == "from disk"
    assert layered.front.get("k") is not None


# --- the SQLite file -----------------------------------------------------------------------------


def test_sqlite_roundtrip_mode_0600_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "c.sqlite3"
    cache = SQLiteCache(path)
    original = LMResponse(
        text="t",
        usage=LmUsage.from_tokens(3, 1, detail={"x": 1}).with_cost(dsrs.Cost(msats=7)),
        reasoning="r",
        finish_reason="stop",
        raw_usage={"prompt_tokens": 3},
        provider="p",
        model="m",
    )
    cache.set("k", original)
    assert cache.get("k") == original
    assert cache.get("missing") is None
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for suffix in ("-wal", "-shm"):
            extra = Path(f"{path}{suffix}")
            if extra.exists():
                assert stat.S_IMODE(extra.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_no_prompt_or_secret_in_the_file(tmp_path: Path) -> None:
    set_cache(LayeredCache(MemoryCache(), SQLiteCache(tmp_path / "s.sqlite3")))
    with openai_wire_server() as srv:
        lm = dsrs.LM("m", base_url=srv.url, cache=True, api_key="sk-secret-key-do-not-store-123")
        await lm.acall("a private prompt")
    data = b"".join(p.read_bytes() for p in tmp_path.glob("s.sqlite3*"))
    assert b"sk-secret-key" not in data


def test_threads_share_one_file(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "t.sqlite3")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.set(f"{n}-{i}", response(f"{n}-{i}"))
                got = cache.get(f"{n}-{i}")
                assert got is not None and got.text == f"{n}-{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.stats()["entries"] == 400


def test_processes_write_and_read_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite3"
    SQLiteCache(path).set("from-parent", response("parent"))
    script = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("error")
        from dsrs._cache.sqlite import SQLiteCache
        from dsrs.types import LMResponse
        cache = SQLiteCache(sys.argv[1])
        me = sys.argv[2]
        assert cache.get("from-parent").text == "parent"
        for i in range(150):
            cache.set(f"{me}-{i}", LMResponse(text=f"{me}-{i}"))
        print(sum(cache.get(f"{me}-{i}") is not None for i in range(150)))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), f"w{n}"], stdout=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert outs == ["150"] * 4
    cache = SQLiteCache(path)
    assert cache.stats()["entries"] == 601
    assert cache.get("w3-149") is not None


async def test_a_corrupt_file_is_a_miss_with_a_warning_and_clear_recreates_it(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    (cache_dir / "responses.sqlite3").write_bytes(b"this is not a database" * 100)
    lm = dsrs.LM("fake:echo").with_cache(True)
    with pytest.warns(CacheWarning, match="unusable"):
        first = await lm.acall("still works")
    assert first.text == "still works" and not first.cache_hit
    disk = get_cache()
    assert isinstance(disk, LayeredCache) and isinstance(disk.back, SQLiteCache)
    assert disk.back.broken is not None
    # The memory layer still serves this process; the disk layer stays off without more warnings.
    assert (await lm.acall("still works")).cache_hit
    assert disk.back.clear() == 0
    assert disk.back.broken is None
    disk.back.set("k", response())
    assert disk.back.get("k") is not None


def test_a_locked_file_is_a_miss_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    cache = SQLiteCache(path, busy_timeout_s=0.05)
    cache.set("k", response("before"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.warns(CacheWarning, match="could not write"):
            cache.set("k2", response("blocked"))
        assert cache.get("k") is not None  # WAL: readers are not blocked by a writer
        assert cache.broken is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    cache.set("k2", response("after"))
    assert cache.get("k2") is not None


def test_an_unreadable_entry_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite3"
    cache = SQLiteCache(path)
    cache.set("k", response())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE responses SET value=? WHERE key='k'", (b"{not json",))
    conn.close()
    with pytest.warns(CacheWarning, match="unreadable"):
        assert cache.get("k") is None
    assert cache.stats()["entries"] == 0
