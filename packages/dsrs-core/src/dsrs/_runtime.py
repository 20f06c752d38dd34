"""The process's dsrs runtime: every piece of process-wide state in one object.

What used to be six module singletons lives here: the plugin host, the provider registry, the
transport factory and per-loop transports, the sync portal (a background event loop), the cache
backend, and the default settings. ``reset_runtime()`` gives tests a clean slate in one call.

After ``os.fork()`` (multiprocessing's default start method on Linux, ``gunicorn --preload``,
Celery's prefork pool) the child gets a fresh runtime: the parent's portal thread does not exist
in the child, and its event loops, connection pools, SQLite and Redis connections must not be
shared. What is only configuration — the plugin host, the registry, a transport factory, the
configured LM and adapter, an explicitly set cache backend — carries over; what holds sockets,
threads or in-flight budget holds is rebuilt on first use. Objects that hold such resources
themselves register a callback with :func:`on_fork`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from dsrs._cache import CacheBackend
    from dsrs._registry import Registry
    from dsrs._settings import Settings
    from dsrs.plugins._manager import PluginHost
    from dsrs.transport import Transport

__all__ = ["Runtime", "on_fork", "reset_runtime", "runtime"]


class Runtime:
    """Process-wide state. One instance is current; see :func:`runtime`."""

    __slots__ = (
        "cache",
        "closers",
        "host",
        "lock",
        "pid",
        "portal_loop",
        "portal_thread",
        "registry",
        "settings",
        "transport_factory",
        "transports",
    )

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pid = os.getpid()
        self.host: PluginHost | None = None
        self.registry: Registry | None = None
        self.transport_factory: Callable[[], Transport] | None = None
        self.transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Transport] = weakref.WeakKeyDictionary()
        # Strong references to each loop's closer generator (the loop itself keeps only a weak one).
        self.closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object] = weakref.WeakKeyDictionary()
        self.portal_loop: asyncio.AbstractEventLoop | None = None
        self.portal_thread: threading.Thread | None = None
        self.cache: CacheBackend | None = None
        self.settings: Settings | None = None

    def ensure(self, attr: str, make: Callable[[], Any]) -> Any:
        """The value of ``attr``, made once by ``make()`` (under the lock) when it is still ``None``."""
        value = getattr(self, attr)
        if value is None:
            with self.lock:
                value = getattr(self, attr)
                if value is None:
                    value = make()
                    setattr(self, attr, value)
        return value

    def forked(self) -> Runtime:
        """The child's runtime after a fork: configuration kept, resources left behind."""
        child = Runtime()
        child.host = self.host
        child.registry = self.registry
        child.transport_factory = self.transport_factory
        child.settings = self.settings
        child.cache = self.cache  # its SQLite layer reconnects per process (it checks the pid)
        return child


_current = Runtime()
_fork_callbacks: weakref.WeakSet[Any] = weakref.WeakSet()
_fork_functions: list[Callable[[], None]] = []


def runtime() -> Runtime:
    """The current runtime."""
    return _current


def reset_runtime() -> Runtime:
    """Start from a clean slate (tests): a new runtime with nothing loaded or configured.

    The old runtime's portal loop is stopped; its transports close with their loops.
    """
    global _current
    old = _current
    _current = Runtime()
    loop = old.portal_loop
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)
    return _current


def on_fork(obj: Any = None, *, function: Callable[[], None] | None = None) -> None:
    """Call ``obj.after_fork()`` (held weakly) or ``function()`` in a forked child, before it goes on."""
    if obj is not None:
        _fork_callbacks.add(obj)
    if function is not None:
        _fork_functions.append(function)


def _after_fork_in_child() -> None:
    global _current
    _current = _current.forked()
    for obj in list(_fork_callbacks):
        with contextlib.suppress(Exception):  # a broken hook must not kill the child
            obj.after_fork()
    for fn in list(_fork_functions):
        with contextlib.suppress(Exception):
            fn()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
