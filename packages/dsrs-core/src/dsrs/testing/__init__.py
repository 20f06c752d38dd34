"""Test support for dsrs and provider packages (needs pytest).

* :class:`ProviderConformance` — the conformance kit every provider's tests subclass;
* :class:`LoopbackServer`, :class:`Reply`, :func:`openai_wire_server` — loopback HTTP servers;
* :class:`HostileServer` — a loopback server that drips, floods, bombs, redirects, echoes keys and
  lies about usage (``SCENARIOS``), for fault tests of deadlines, bounds and secrets;
* :func:`isolated_plugins` — a plugin host with only dsrs-core's own plugin, plus what you add.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dsrs import _runtime
from dsrs.testing._conformance import ProviderConformance
from dsrs.testing._hostile import SCENARIOS, HostileRequest, HostileServer, lying_usage
from dsrs.testing._loopback import LoopbackServer, RecordedRequest, Reply, openai_chat_reply, openai_wire_server
from dsrs.testing._schema_examples import example_instance

__all__ = [
    "SCENARIOS",
    "HostileRequest",
    "HostileServer",
    "LoopbackServer",
    "ProviderConformance",
    "RecordedRequest",
    "Reply",
    "example_instance",
    "isolated_plugins",
    "lying_usage",
    "openai_chat_reply",
    "openai_wire_server",
]


@contextmanager
def isolated_plugins(*plugins: object, autoload: bool = False) -> Iterator[None]:
    """Within the block, only dsrs-core's plugin (and ``plugins``) are loaded; restored after."""
    from dsrs import _registry as registry
    from dsrs.plugins import register_plugin, reset_host

    saved = _runtime.runtime().host
    reset_host(autoload=autoload)
    try:
        for p in plugins:
            register_plugin(p)
        yield
    finally:
        _runtime.runtime().host = saved
        registry.invalidate()
