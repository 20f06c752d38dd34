"""Run async code from sync callers, even inside a running event loop (Jupyter).

All sync twins (``LM.call``, ``Predict.forward``, ...) submit their coroutine to one background
event loop on a daemon thread. One loop means the per-loop HTTP transport (and its connection pool)
is reused across sync calls, and provider code exists only once, in async form.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from dsrs import _runtime

T = TypeVar("T")
_atexit_registered = False


def _os_pid() -> int:
    import os

    return os.getpid()


def _start() -> asyncio.AbstractEventLoop:
    """The runtime's portal loop, started on first use (and again in a forked child, where the
    parent's loop thread does not exist)."""
    global _atexit_registered
    rt = _runtime.runtime()
    loop = rt.portal_loop
    if loop is not None and not loop.is_closed():
        return loop
    with rt.lock:
        if rt.portal_loop is None or rt.portal_loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="dsrs-portal", daemon=True)
            thread.start()
            ready.wait()
            rt.portal_loop, rt.portal_thread = loop, thread
            if not _atexit_registered:
                atexit.register(_shutdown)
                _atexit_registered = True
        assert rt.portal_loop is not None
        return rt.portal_loop


def _shutdown() -> None:
    rt = _runtime.runtime()
    loop = rt.portal_loop
    if loop is None or loop.is_closed() or rt.pid != _os_pid():
        return

    async def close_transports() -> None:
        # Finalize the transport's loop-shutdown closer here, while the loop runs: left suspended,
        # it would be collected during interpreter teardown ("Exception ignored ... Handle").
        closer = rt.closers.pop(loop, None)
        if isinstance(closer, tuple):
            await closer[0].aclose()
        transport = rt.transports.pop(loop, None)
        if transport is not None:
            await transport.aclose()

    with contextlib.suppress(Exception):  # best effort at interpreter exit
        asyncio.run_coroutine_threadsafe(close_transports(), loop).result(timeout=2)
    loop.call_soon_threadsafe(loop.stop)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the portal loop and return its result (or raise its error)."""
    loop = _start()
    if threading.current_thread() is _runtime.runtime().portal_thread:
        coro.close()
        raise RuntimeError("a sync dsrs call was made from inside dsrs's own loop; use the async API")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator from sync code, one item per round trip to the portal loop."""

    async def next_item() -> tuple[bool, T | None]:
        try:
            return True, await agen.__anext__()
        except StopAsyncIteration:
            return False, None

    try:
        while True:
            ok, item = run_sync(next_item())
            if not ok:
                return
            yield item  # type: ignore[misc]
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            run_sync(aclose())
