"""A small Nostr relay client (NIP-01, NIP-42) on ``websockets``: publish, subscribe, close.

One :class:`RelayConnection` per relay URL; :class:`RelayPool` fans out to several. Incoming
events are handed to a callback with the relay URL and subscription id; verification is the
caller's job (it must never trust a relay). Relay ``AUTH`` challenges are answered with a signed
kind-22242 event, and a write or subscription refused with ``auth-required:`` is retried once
after authenticating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from dsrs_pylon.event import Event, sign_event
from dsrs_pylon.keys import Keys

__all__ = ["AUTH_KIND", "EventSink", "RelayConnectError", "RelayConnection", "RelayPool", "new_subscription_id"]

log = logging.getLogger("dsrs_pylon.relay")

AUTH_KIND = 22242
#: Called with (relay_url, subscription_id, event) for every EVENT a relay sends.
EventSink = Callable[[str, str, Event], None]


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class RelayConnectError(ConnectionError):
    """A relay could not be reached or dropped the connection."""


def new_subscription_id(prefix: str = "dsrs") -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


class RelayConnection:
    """One websocket to one relay."""

    def __init__(self, url: str, keys: Keys, on_event: EventSink, *, close_timeout: float = 2.0) -> None:
        self.url = url
        self._keys = keys
        self._on_event = on_event
        self._close_timeout = close_timeout
        self._ws: ClientConnection | None = None
        self._sock: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending_ok: dict[str, asyncio.Future[tuple[bool, str]]] = {}
        self._eose: dict[str, asyncio.Event] = {}
        self._subs: dict[str, list[dict[str, Any]]] = {}
        self.closed_subscriptions: dict[str, str] = {}
        self._challenge: str | None = None
        self._auth_task: asyncio.Task[bool] | None = None
        self.authenticated = False
        self.notices: list[str] = []
        self._lost = asyncio.Event()
        self.changed = asyncio.Event()  # set when the connection is lost or a subscription is closed

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._lost.is_set()

    async def wait_lost(self) -> None:
        """Return once the connection is gone (closed by either side)."""
        await self._lost.wait()

    def serves(self, sub_id: str) -> bool:
        """Is ``sub_id`` still live here (connected, and not CLOSED by the relay)?"""
        return not self._lost.is_set() and sub_id not in self.closed_subscriptions

    @property
    def open_subscriptions(self) -> list[str]:
        return list(self._subs)

    async def connect(self, timeout: float) -> None:
        try:
            self._ws = await asyncio.wait_for(
                websockets.connect(
                    self.url,
                    open_timeout=timeout,
                    close_timeout=self._close_timeout,
                    compression=None,
                    max_size=2**22,
                    ping_interval=20,
                ),
                timeout,
            )
        except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
            raise RelayConnectError(f"cannot connect to relay {self.url}: {type(exc).__name__}: {exc}") from None
        self._sock = self._ws.transport.get_extra_info("socket")
        self._quickack()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(), name=f"relay-reader {self.url}")

    def _quickack(self) -> None:
        # Relays that leave Nagle on hold a small frame until the previous one is ACKed, and Linux
        # delays ACKs by up to 40 ms: re-arming TCP_QUICKACK after each frame keeps the exchange
        # of small messages at loopback speed (measured: 44 ms → 0.3 ms for the first event).
        if _QUICKACK is not None and self._sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    async def _send(self, message: Sequence[Any]) -> None:
        if self._ws is None or self._lost.is_set():
            raise RelayConnectError(f"relay {self.url} is not connected")
        try:
            await self._ws.send(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        except ConnectionClosed as exc:
            self._lost.set()
            raise RelayConnectError(f"relay {self.url} closed the connection: {exc}") from None

    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                self._quickack()
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(msg, list) and msg and isinstance(msg[0], str):
                    self._dispatch(msg)
        except ConnectionClosed:
            pass
        except Exception:  # pragma: no cover - keep the reader from dying silently
            log.exception("relay %s: reader failed", self.url)
        finally:
            self._lost.set()
            self.changed.set()
            for fut in self._pending_ok.values():
                if not fut.done():
                    fut.set_exception(RelayConnectError(f"relay {self.url} closed the connection"))
            for ev in self._eose.values():
                ev.set()

    def _dispatch(self, msg: list[Any]) -> None:
        kind = msg[0]
        if kind == "EVENT" and len(msg) >= 3 and isinstance(msg[1], str) and isinstance(msg[2], dict):
            if msg[1] in self._subs:
                self._on_event(self.url, msg[1], msg[2])
        elif kind == "OK" and len(msg) >= 3 and isinstance(msg[1], str):
            fut = self._pending_ok.pop(msg[1], None)
            if fut is not None and not fut.done():
                fut.set_result((msg[2] is True, str(msg[3]) if len(msg) > 3 else ""))
        elif kind == "EOSE" and len(msg) >= 2 and isinstance(msg[1], str):
            ev = self._eose.get(msg[1])
            if ev is not None:
                ev.set()
        elif kind == "CLOSED" and len(msg) >= 2 and isinstance(msg[1], str):
            reason = str(msg[2]) if len(msg) > 2 else ""
            sub = msg[1]
            if reason.startswith("auth-required") and sub in self._subs and self._challenge is not None:
                asyncio.get_running_loop().create_task(self._resubscribe_after_auth(sub))
                return
            self._subs.pop(sub, None)
            self.closed_subscriptions[sub] = reason
            self.changed.set()
            ev = self._eose.get(sub)
            if ev is not None:
                ev.set()
        elif kind == "AUTH" and len(msg) >= 2 and isinstance(msg[1], str):
            self._challenge = msg[1]
            self.authenticated = False
            self._auth_task = asyncio.get_running_loop().create_task(self._authenticate(msg[1]))
        elif kind == "NOTICE" and len(msg) >= 2:
            self.notices.append(str(msg[1])[:500])
            log.debug("relay %s notice: %s", self.url, str(msg[1])[:200])

    async def _authenticate(self, challenge: str) -> bool:
        event = sign_event(self._keys, AUTH_KIND, [["relay", self.url], ["challenge", challenge]])
        fut: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self._pending_ok[event["id"]] = fut
        try:
            await self._send(["AUTH", event])
            ok, message = await asyncio.wait_for(fut, 10)
        except (RelayConnectError, asyncio.TimeoutError):
            return False
        self.authenticated = ok
        if not ok:
            log.debug("relay %s refused AUTH: %s", self.url, message)
        return ok

    async def _await_auth(self) -> bool:
        if self._auth_task is None:
            return False
        try:
            return await asyncio.shield(self._auth_task)
        except Exception:
            return False

    async def _resubscribe_after_auth(self, sub: str) -> None:
        if await self._await_auth() and sub in self._subs:
            with contextlib.suppress(RelayConnectError):
                await self._send(["REQ", sub, *self._subs[sub]])
        else:
            self._subs.pop(sub, None)
            self.closed_subscriptions[sub] = "auth-required: authentication failed"
            self.changed.set()
            ev = self._eose.get(sub)
            if ev is not None:
                ev.set()

    async def publish(self, event: Event, timeout: float) -> tuple[bool, str]:
        """Send ``event``; return the relay's ``(accepted, message)`` (retrying once after AUTH)."""
        for attempt in range(2):
            fut: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
            self._pending_ok[event["id"]] = fut
            await self._send(["EVENT", event])
            try:
                ok, message = await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                self._pending_ok.pop(event["id"], None)
                return False, "timeout: no OK from relay"
            if not ok and message.startswith("auth-required") and attempt == 0 and await self._await_auth():
                continue
            return ok, message
        return False, "auth-required"  # pragma: no cover

    async def subscribe(
        self, sub_id: str, filters: Sequence[Mapping[str, Any]], *, wait_eose: float | None = None
    ) -> bool:
        """Open a subscription; with ``wait_eose`` wait (that many seconds) until it is live."""
        self._subs[sub_id] = [dict(f) for f in filters]
        ev = self._eose.setdefault(sub_id, asyncio.Event())
        await self._send(["REQ", sub_id, *self._subs[sub_id]])
        if wait_eose is None:
            return True
        try:
            await asyncio.wait_for(ev.wait(), wait_eose)
        except asyncio.TimeoutError:
            return False
        return sub_id in self._subs

    async def unsubscribe(self, sub_id: str) -> None:
        if self._subs.pop(sub_id, None) is not None and self.connected:
            with contextlib.suppress(RelayConnectError):
                await self._send(["CLOSE", sub_id])
        self._eose.pop(sub_id, None)

    async def close(self) -> None:
        """CLOSE every subscription, then close the websocket."""
        for sub in list(self._subs):
            await self.unsubscribe(sub)
        if self._auth_task is not None and not self._auth_task.done():
            self._auth_task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, self._close_timeout)


class RelayPool:
    """Connections to several relays: connect concurrently, publish to all, subscribe on all."""

    def __init__(self, urls: Sequence[str], keys: Keys, on_event: EventSink) -> None:
        if not urls:
            raise ValueError("no relay URLs")
        self.urls = list(dict.fromkeys(urls))
        self.keys = keys
        self.connections: list[RelayConnection] = []
        self.failures: dict[str, str] = {}
        self._on_event = on_event

    async def connect(self, timeout: float) -> list[RelayConnection]:
        conns = [RelayConnection(u, self.keys, self._on_event) for u in self.urls]
        results = await asyncio.gather(*(c.connect(timeout) for c in conns), return_exceptions=True)
        for conn, result in zip(conns, results, strict=True):
            if isinstance(result, BaseException):
                self.failures[conn.url] = str(result)
            else:
                self.connections.append(conn)
        return self.connections

    async def subscribe(
        self, sub_id: str, filters: Sequence[Mapping[str, Any]], *, wait_eose: float | None = None
    ) -> int:
        """Subscribe on every connected relay; returns how many confirmed (EOSE) or accepted it."""
        results = await asyncio.gather(
            *(c.subscribe(sub_id, filters, wait_eose=wait_eose) for c in self.connections), return_exceptions=True
        )
        for conn, result in zip(self.connections, results, strict=True):
            if isinstance(result, BaseException) or result is False:
                self.failures.setdefault(conn.url, f"subscription failed: {result}")
        return sum(1 for r in results if r is True)

    async def publish(self, event: Event, timeout: float) -> dict[str, tuple[bool, str]]:
        """Publish to every connected relay; ``{url: (accepted, message)}``."""

        async def one(conn: RelayConnection) -> tuple[bool, str]:
            try:
                return await conn.publish(event, timeout)
            except RelayConnectError as exc:
                return False, f"error: {exc}"

        results = await asyncio.gather(*(one(c) for c in self.connections))
        return {c.url: r for c, r in zip(self.connections, results, strict=True)}

    async def unsubscribe(self, sub_id: str) -> None:
        await asyncio.gather(*(c.unsubscribe(sub_id) for c in self.connections), return_exceptions=True)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)

    @property
    def any_connected(self) -> bool:
        return any(c.connected for c in self.connections)
