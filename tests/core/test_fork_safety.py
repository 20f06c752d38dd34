"""After os.fork() (multiprocessing's default start method on Linux, gunicorn --preload, Celery's
prefork pool) a child's first sync call answers: it gets a fresh portal loop, transports and pools,
and the parent's in-flight budget holds are not counted in the child."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
from typing import Any

import pytest

import dsrs
from dsrs.testing import openai_wire_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")


def _child_call(url: str, queue: Any) -> None:
    try:
        lm = dsrs.LM("m", base_url=url)
        text = lm.call("from the child").text
        async_text = asyncio.run(lm.acall("async in the child")).text
        queue.put(("ok", text, async_text))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}", ""))


def test_a_forked_child_sync_call_answers_after_sync_and_async_use_in_the_parent() -> None:
    with openai_wire_server() as srv:
        lm = dsrs.LM("m", base_url=srv.url)
        assert lm.call("parent sync").text  # starts the portal thread and its transport
        assert asyncio.run(lm.acall("parent async")).text
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_child_call, args=(srv.url, queue))
        child.start()
        try:
            status, text, async_text = queue.get(timeout=30)
        finally:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
        assert status == "ok", text
        assert text and async_text
        assert child.exitcode == 0


def _child_budget(mux: Any, queue: Any) -> None:
    try:
        status = mux.budget_status()["global"]
        answer = mux.call("child").text
        queue.put(("ok", status.reserved, status.spent, answer))
    except BaseException as exc:
        queue.put(("error", f"{type(exc).__name__}: {exc}", None, None))


def test_parent_holds_are_not_counted_in_the_child() -> None:
    mux = dsrs.LaneMux(budget_msats=1_000).add_lane("only", dsrs.LM("fake:echo"), reserve_msats=100)
    assert mux.call("spend once").text == "spend once"
    spent_before = mux.budget_status()["global"].spent
    # A call of the parent's is in flight when the process forks: its hold is the parent's.
    hold = mux.budgets.reserve_sync({"mux:global": 1_000}, 900)  # type: ignore[attr-defined]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_budget, args=(mux, queue))
    child.start()
    try:
        status, reserved, spent, answer = queue.get(timeout=30)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert status == "ok", reserved
    assert reserved == 0, "the parent's in-flight hold was counted in the child"
    assert spent == spent_before  # what was spent before the fork stays spent
    assert answer == "child"  # 100 msats reserve fits only because the parent's 900 is not counted
    mux.budgets.settle_sync(hold, 0)  # type: ignore[attr-defined]
