"""Fixtures for dsrs-pylon: a real Nostr relay on 127.0.0.1 (nostr-sdk LocalRelay), DVMs, wallets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

import dsrs
from dsrs.plugins import register_plugin, unregister_plugin
from dsrs_pylon.dvm import DvmService
from dsrs_pylon.testing import Ledger, LedgerAccount, LedgerWalletPlugin, LoopbackRelay, free_port

_ENV = ("PYLON_RELAY_URL", "PYLON_NWC_URI", "PYLON_NSEC", "PYLON_MNEMONIC", "PYLON_KEY_FILE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def relay() -> Iterator[LoopbackRelay]:
    with LoopbackRelay() as r:
        yield r


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def customer(ledger: Ledger) -> LedgerAccount:
    return ledger.account("customer", 10_000)


@pytest.fixture
def provider_account(ledger: Ledger) -> LedgerAccount:
    return ledger.account("provider", 0)


@pytest.fixture
def wallet(customer: LedgerAccount) -> Iterator[LedgerWalletPlugin]:
    """The customer's wallet as an in-process ``dsrs_pay_invoice`` plugin."""
    plugin = LedgerWalletPlugin(customer)
    name = register_plugin(plugin, "test-ledger-wallet")
    try:
        yield plugin
    finally:
        unregister_plugin(name)


@pytest.fixture
async def free_dvm(relay: LoopbackRelay) -> AsyncIterator[DvmService]:
    async with DvmService(dsrs.LM("fake:echo"), [relay.url], name="free") as dvm:
        yield dvm


@pytest.fixture
async def paid_dvm(relay: LoopbackRelay, provider_account: LedgerAccount) -> AsyncIterator[DvmService]:
    async with DvmService(
        dsrs.LM("fake:echo"), [relay.url], price_msats=21, wallet=provider_account, payment_timeout=5, name="paid"
    ) as dvm:
        yield dvm


class DvmThread:
    """A DVM on its own event loop in a thread (for sync tests such as the conformance kit)."""

    def __init__(self, factory: Callable[[], DvmService]) -> None:
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.dvm: DvmService | None = None

    def __enter__(self) -> DvmService:
        self._thread.start()
        self.dvm = self._factory()
        asyncio.run_coroutine_threadsafe(self.dvm.start(), self._loop).result(10)
        return self.dvm

    def __exit__(self, *exc: object) -> None:
        assert self.dvm is not None
        asyncio.run_coroutine_threadsafe(self.dvm.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class RelayProxy:
    """A websocket proxy in front of the relay: records client frames, can rewrite relay frames."""

    def __init__(self, upstream: str, transform: Callable[[list[Any]], list[Any] | None] | None = None) -> None:
        self.upstream = upstream
        self.transform = transform
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.client_frames: list[list[Any]] = []
        self.open_connections = 0
        self.closed_connections = 0
        self._server: Any = None

    async def _handle(self, client: ServerConnection) -> None:
        self.open_connections += 1
        try:
            async with websockets.connect(self.upstream, compression=None) as upstream:

                async def up() -> None:
                    async for raw in client:
                        self.client_frames.append(json.loads(raw))
                        await upstream.send(raw)

                async def down() -> None:
                    async for raw in upstream:
                        msg = json.loads(raw)
                        if self.transform is not None:
                            msg = self.transform(msg)
                        # A transform may drop a frame (None) or expand it into several (a list of frames).
                        frames = [] if msg is None else msg if msg and isinstance(msg[0], list) else [msg]
                        for frame in frames:
                            await client.send(json.dumps(frame))

                tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in tasks:
                    t.cancel()
        except Exception:
            pass
        finally:
            self.closed_connections += 1

    async def __aenter__(self) -> RelayProxy:
        self._server = await serve(self._handle, "127.0.0.1", self.port, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    def sent(self, kind: str) -> list[list[Any]]:
        return [f for f in self.client_frames if f and f[0] == kind]
