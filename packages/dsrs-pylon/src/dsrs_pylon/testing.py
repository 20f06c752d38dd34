"""Test doubles with real wire behaviour: an in-memory Lightning ledger, a NIP-47 wallet *service*
serving it over a Nostr relay, a wallet plugin paying from it directly, and a loopback relay runner.

Invoices are real signed BOLT-11 strings (``lnbcrt...``); payments move msats between ledger
accounts and return the preimage, so a payment can be proven like on Lightning. ``LoopbackRelay``
runs nostr-sdk's ``LocalRelay`` (``pip install nostr-sdk``, part of the ``test`` extra) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dsrs.errors import PaymentError
from dsrs.plugins import PaymentContext, PaymentProof, hookimpl
from dsrs_pylon import bolt11, encryption
from dsrs_pylon.event import Event, sign_event, verify_event
from dsrs_pylon.keys import Keys
from dsrs_pylon.nwc import INFO_KIND, REQUEST_KIND, RESPONSE_KIND
from dsrs_pylon.relay import RelayPool, new_subscription_id

__all__ = [
    "Ledger",
    "LedgerAccount",
    "LedgerWalletPlugin",
    "LoopbackRelay",
    "NwcWalletService",
    "free_port",
]


@dataclass
class _Invoice:
    payee: str
    amount_msats: int
    preimage: bytes
    bolt11: str
    expires_at: float
    description: str
    paid_by: str | None = None
    settled_at: int | None = None


class Ledger:
    """A tiny Lightning network in memory: accounts, invoices, payments. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.balances: dict[str, int] = {}
        self._nodes: dict[str, bytes] = {}
        self.invoices: dict[str, _Invoice] = {}
        self.payments: list[tuple[str, str, int]] = []  # (payer, payee, msats)

    def account(self, name: str, balance_msats: int = 0) -> LedgerAccount:
        with self._lock:
            self.balances.setdefault(name, balance_msats)
            self._nodes.setdefault(name, secrets.token_bytes(32))
        return LedgerAccount(self, name)

    def issue(self, payee: str, amount_msats: int, description: str = "", expiry: int = 600) -> str:
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).digest()
        invoice = bolt11.encode(
            amount_msats=amount_msats,
            payment_hash=payment_hash,
            node_secret=self._nodes[payee],
            description=description,
            expiry=expiry,
            payment_secret=secrets.token_bytes(32),
        )
        with self._lock:
            self.invoices[payment_hash.hex()] = _Invoice(
                payee, amount_msats, preimage, invoice, time.time() + expiry, description
            )
        return invoice

    def pay(self, payer: str, invoice: str) -> str:
        """Pay ``invoice`` from ``payer``; return the preimage hex. Raises :class:`PaymentError`."""
        try:
            decoded = bolt11.decode(invoice)
        except bolt11.Bolt11Error as exc:
            raise PaymentError(f"invalid invoice: {exc}", code="PAYMENT_FAILED") from None
        with self._lock:
            record = self.invoices.get(decoded.payment_hash)
            if record is None:
                raise PaymentError("no route to the invoice's payee", code="PAYMENT_FAILED")
            if record.paid_by is not None:
                raise PaymentError("invoice already paid", code="PAYMENT_FAILED")
            if time.time() > record.expires_at:
                raise PaymentError("invoice expired", code="PAYMENT_FAILED")
            if self.balances.get(payer, 0) < record.amount_msats:
                raise PaymentError("insufficient balance", code="INSUFFICIENT_BALANCE")
            self.balances[payer] -= record.amount_msats
            self.balances[record.payee] += record.amount_msats
            record.paid_by, record.settled_at = payer, int(time.time())
            self.payments.append((payer, record.payee, record.amount_msats))
            return record.preimage.hex()

    def lookup(self, payment_hash: str) -> dict[str, Any]:
        with self._lock:
            record = self.invoices.get(payment_hash)
            if record is None:
                raise PaymentError("unknown invoice", code="NOT_FOUND")
            out: dict[str, Any] = {
                "type": "incoming",
                "invoice": record.bolt11,
                "payment_hash": payment_hash,
                "amount": record.amount_msats,
                "description": record.description,
                "expires_at": int(record.expires_at),
                "state": "settled" if record.settled_at else "pending",
            }
            if record.settled_at:
                out["settled_at"] = record.settled_at
                out["preimage"] = record.preimage.hex()
            return out

    def paid_total(self, payer: str) -> int:
        with self._lock:
            return sum(m for p, _, m in self.payments if p == payer)


@dataclass
class LedgerAccount:
    """One account; also a DVM :class:`~dsrs_pylon.dvm.InvoiceWallet`."""

    ledger: Ledger
    name: str

    @property
    def balance_msats(self) -> int:
        return self.ledger.balances[self.name]

    async def make_invoice(self, amount_msats: int, description: str = "", expiry: int = 600) -> str:
        return self.ledger.issue(self.name, amount_msats, description, expiry)

    async def wait_paid(self, payment_hash: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.ledger.lookup(payment_hash).get("settled_at"):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)

    def pay(self, invoice: str) -> str:
        return self.ledger.pay(self.name, invoice)


@dataclass
class LedgerWalletPlugin:
    """A ``dsrs_pay_invoice`` plugin paying from a ledger account; records every call."""

    account: LedgerAccount
    calls: list[tuple[str, int, PaymentContext]] = field(default_factory=list)

    @hookimpl
    def dsrs_pay_invoice(self, bolt11: str, amount_msats: int, context: PaymentContext) -> PaymentProof | None:
        self.calls.append((bolt11, amount_msats, context))
        preimage = self.account.pay(bolt11)
        return PaymentProof(amount_msats=amount_msats, preimage=preimage, wallet=f"ledger:{self.account.name}")


class NwcWalletService:
    """A NIP-47 wallet service over real relays, backed by a :class:`Ledger`.

    ``connection_uri(account)`` mints a client secret bound to that account. Supports
    ``pay_invoice``, ``make_invoice``, ``lookup_invoice`` and ``get_balance``; other methods answer
    ``NOT_IMPLEMENTED``; unknown client keys answer ``UNAUTHORIZED``.

    ``encryption`` is what the service speaks, announced in its info event's ``encryption`` tag
    (NIP-47): ``("nip44_v2",)`` is a wallet that refuses NIP-04; ``("nip04",)`` a legacy one, whose
    info event then carries no ``encryption`` tag at all (as wallets from before NIP-44 publish it).
    A request in a scheme it does not speak is answered ``UNSUPPORTED_ENCRYPTION``.
    """

    METHODS = ("pay_invoice", "make_invoice", "lookup_invoice", "get_balance")

    def __init__(
        self,
        ledger: Ledger,
        relays: list[str],
        keys: Keys | None = None,
        *,
        encryption: tuple[str, ...] = ("nip44_v2", "nip04"),
    ) -> None:
        self.ledger = ledger
        self.relays = relays
        self.keys = keys or Keys.generate()
        self.encryption = encryption
        self.clients: dict[str, str] = {}  # client pubkey -> account
        self.requests: list[tuple[str, str]] = []  # (client pubkey, method)
        #: The scheme of each request, as its ``encryption`` tag named it (absent = nip04).
        self.request_schemes: list[str] = []
        #: Every request event as received (kind 23194 is ephemeral: relays do not store it).
        self.received: list[Event] = []
        self._pool: RelayPool | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_uri(self, account: str) -> str:
        client = Keys.generate()
        self.clients[client.public_key] = account
        relays = "&".join(f"relay={r}" for r in self.relays)
        return f"nostr+walletconnect://{self.keys.public_key}?{relays}&secret={client.secret_hex()}"

    async def start(self) -> None:
        pool = RelayPool(self.relays, self.keys, self._on_event)
        await pool.connect(5.0)
        if not pool.connections:
            raise ConnectionError("wallet service: no relay reachable")
        self._pool = pool
        legacy = self.encryption == (encryption.NIP04,)
        info_tags = [] if legacy else [["encryption", " ".join(self.encryption)]]
        await pool.publish(sign_event(self.keys, INFO_KIND, info_tags, " ".join(self.METHODS)), 5.0)
        flt = {"kinds": [REQUEST_KIND], "#p": [self.keys.public_key]}
        await pool.subscribe(new_subscription_id("nwc-svc"), [flt], wait_eose=5.0)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> NwcWalletService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_event(self, _url: str, _sub: str, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, event: Event) -> None:
        if event.get("kind") != REQUEST_KIND or not verify_event(event):
            return
        client = event["pubkey"]
        self.received.append(event)
        result: dict[str, Any] | None = None
        error: dict[str, str] | None = None
        method = "unknown"
        tag = next((t for t in event["tags"] if t and t[0] == "encryption" and len(t) > 1), None)
        scheme = tag[1] if tag else encryption.NIP04
        self.request_schemes.append(scheme)
        params: dict[str, Any] = {}
        if scheme not in self.encryption:
            error = {"code": "UNSUPPORTED_ENCRYPTION", "message": f"this wallet speaks {' '.join(self.encryption)}"}
        else:
            try:
                body = json.loads(encryption.decrypt_from(self.keys, client, event["content"], scheme))
                method = str(body.get("method"))
                params = body.get("params") or {}
            except (ValueError, AttributeError):
                error = {"code": "OTHER", "message": "cannot decrypt or parse the request"}
        self.requests.append((client, method))
        account = self.clients.get(client)
        if error is None and account is None:
            error = {"code": "UNAUTHORIZED", "message": "no wallet connected for this key"}
        elif error is None and account is not None:
            try:
                result = await asyncio.to_thread(self._dispatch, account, method, params)
            except PaymentError as exc:
                error = {"code": exc.code or "PAYMENT_FAILED", "message": exc.message}
            except (KeyError, TypeError, ValueError) as exc:
                error = {"code": "OTHER", "message": f"bad params: {type(exc).__name__}"}
        reply = {"result_type": method, "error": error, "result": result}
        reply_scheme = scheme if scheme in encryption.SCHEMES else encryption.NIP04
        content = encryption.encrypt_to(self.keys, client, json.dumps(reply), reply_scheme)
        response = sign_event(self.keys, RESPONSE_KIND, [["p", client], ["e", event["id"]]], content)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.publish(response, 5.0)

    def _dispatch(self, account: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "pay_invoice":
            return {"preimage": self.ledger.pay(account, str(params["invoice"])), "fees_paid": 0}
        if method == "make_invoice":
            invoice = self.ledger.issue(
                account, int(params["amount"]), str(params.get("description", "")), int(params.get("expiry", 600))
            )
            return {"type": "incoming", "invoice": invoice, "amount": int(params["amount"])}
        if method == "lookup_invoice":
            return self.ledger.lookup(str(params["payment_hash"]))
        if method == "get_balance":
            return {"balance": self.ledger.balances[account]}
        raise PaymentError(f"{method} is not implemented", code="NOT_IMPLEMENTED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LoopbackRelay:
    """nostr-sdk's in-process ``LocalRelay`` on 127.0.0.1 (``with LoopbackRelay() as relay: relay.url``)."""

    def __init__(
        self, *, port: int | None = None, nip42: bool = False, max_reqs: int = 1_000, notes_per_minute: int = 100_000
    ) -> None:
        self.port = port or free_port()
        self.nip42 = nip42
        self.rate_limit = (max_reqs, notes_per_minute)
        self.url = f"ws://127.0.0.1:{self.port}"
        self._relay: Any = None

    def start(self) -> LoopbackRelay:
        try:
            import nostr_sdk  # type: ignore[import-untyped,unused-ignore]
        except ImportError as exc:  # pragma: no cover
            raise RuntimeError("LoopbackRelay needs nostr-sdk: pip install 'dsrs-pylon[test]'") from exc
        max_reqs, notes = self.rate_limit
        builder = (
            nostr_sdk.LocalRelayBuilder()
            .addr("127.0.0.1")
            .port(self.port)
            .rate_limit(nostr_sdk.RateLimit(max_reqs=max_reqs, notes_per_minute=notes))
        )
        if self.nip42:
            builder = builder.nip42(nostr_sdk.LocalRelayBuilderNip42(mode=nostr_sdk.LocalRelayBuilderNip42Mode.BOTH))
        relay = builder.build()

        def run() -> None:
            asyncio.run(relay.run())

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.01)
        else:  # pragma: no cover
            raise RuntimeError(f"LocalRelay did not listen on port {self.port}")
        self._relay = relay
        return self

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.shutdown()
            self._relay = None
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) != 0:
                        return
                time.sleep(0.01)

    def __enter__(self) -> LoopbackRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
