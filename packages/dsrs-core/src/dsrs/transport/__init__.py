"""Pluggable HTTP transports: httpx (default dependency) and aiohttp (fast path, when installed).

:func:`get_transport` returns one shared transport per running event loop, created on first use:
aiohttp when it is importable (``pip install dsrs-core[fast]``), else httpx. ``DSRS_TRANSPORT=httpx``
or ``=aiohttp`` forces a choice; :func:`set_transport_factory` installs your own (tests, proxies).

Both transports hold the same deadlines (``HttpRequest.timeout`` for the whole exchange,
``first_byte_timeout``/``idle_timeout`` for streams) and bounds (``max_body_bytes``, counted after
gzip/deflate decoding), follow no redirects, and mask request keys in their errors and in the HTTP
libraries' log records: see :mod:`dsrs.transport._base` and ``docs/reliability.md``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator, Callable

from dsrs import _runtime
from dsrs.transport._base import (
    DEFAULT_MAX_BODY_BYTES,
    BodyDecodeError,
    BodyTooLargeError,
    ConnectError,
    HttpRequest,
    HttpResponse,
    ReadError,
    StreamingResponse,
    Transport,
    TransportError,
    TransportTimeout,
    TruncatedBodyError,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BodyDecodeError",
    "BodyTooLargeError",
    "ConnectError",
    "HttpRequest",
    "HttpResponse",
    "ReadError",
    "StreamingResponse",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "TruncatedBodyError",
    "default_transport_name",
    "get_transport",
    "make_transport",
    "set_transport_factory",
]


def default_transport_name() -> str:
    forced = os.environ.get("DSRS_TRANSPORT", "").strip().lower()
    if forced in ("httpx", "aiohttp"):
        return forced
    if forced:
        raise ValueError(f"DSRS_TRANSPORT must be 'httpx' or 'aiohttp', got {forced!r}")
    return "aiohttp" if importlib.util.find_spec("aiohttp") is not None else "httpx"


def make_transport(name: str | None = None) -> Transport:
    """A new transport by name (``"httpx"`` or ``"aiohttp"``), or the configured default."""
    factory = _runtime.runtime().transport_factory
    if factory is not None and name is None:
        return factory()
    name = name or default_transport_name()
    if name == "aiohttp":
        try:
            from dsrs.transport._aiohttp import AiohttpTransport
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("the aiohttp transport needs aiohttp: pip install 'dsrs-core[fast]'") from None
        return AiohttpTransport()
    from dsrs.transport._httpx import HttpxTransport

    return HttpxTransport()


def set_transport_factory(factory: Callable[[], Transport] | None) -> None:
    """Use ``factory`` for every new per-loop transport (``None`` restores the default)."""
    rt = _runtime.runtime()
    rt.transport_factory = factory
    rt.transports.clear()


async def _close_at_loop_shutdown(loop: asyncio.AbstractEventLoop, transport: Transport) -> AsyncIterator[None]:
    # A suspended async generator: ``loop.shutdown_asyncgens()`` (run by ``asyncio.run`` and by
    # pytest-asyncio before a loop closes) finalizes it, which closes the loop's transport, so
    # connections never outlive their loop.
    try:
        yield
    finally:
        per_loop = _runtime.runtime().transports
        if per_loop.get(loop) is transport:
            del per_loop[loop]
        await transport.aclose()


def get_transport() -> Transport:
    """The shared transport of the running event loop (closed when the loop shuts down)."""
    loop = asyncio.get_running_loop()
    rt = _runtime._current  # runtime(), without the call: this runs on every request
    transport = rt.transports.get(loop)
    if transport is None:
        transport = make_transport()
        rt.transports[loop] = transport
        closer = _close_at_loop_shutdown(loop, transport)
        rt.closers[loop] = (closer, loop.create_task(closer.__anext__()))  # type: ignore[arg-type]
    return transport
