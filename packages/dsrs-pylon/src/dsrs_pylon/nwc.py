"""Nostr Wallet Connect (NIP-47) client: pay, make and look up invoices through a wallet over relays.

``PYLON_NWC_URI=nostr+walletconnect://<wallet pubkey>?relay=wss://...&secret=<hex>`` makes the
package's ``dsrs_pay_invoice`` hook pay the swarm's invoices from that wallet. Requests are kind
23194 events signed with the URI's secret; responses are kind 23195 from the wallet's key, tagged
with the request id.

Encryption follows current NIP-47: the wallet's info event (kind 13194) lists the schemes it speaks
in an ``encryption`` tag (``nip44_v2 nip04``); the client picks NIP-44 v2 when offered and NIP-04
only as the fallback (also when the info event has no ``encryption`` tag, which NIP-47 defines as
NIP-04 only), names its choice in the request's ``encryption`` tag, and decrypts the response in the
same scheme.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dsrs.errors import PaymentError
from dsrs.plugins import PaymentContext, PaymentProof
from dsrs_pylon import encryption
from dsrs_pylon.event import Event, first_tag, sign_event, tag_values, verify_event
from dsrs_pylon.keys import InvalidKeyError, Keys
from dsrs_pylon.relay import RelayPool, new_subscription_id

__all__ = [
    "INFO_KIND",
    "REQUEST_KIND",
    "RESPONSE_KIND",
    "NwcClient",
    "NwcError",
    "NwcUri",
    "pay_invoice_sync",
]

INFO_KIND = 13194
REQUEST_KIND = 23194
RESPONSE_KIND = 23195


def encryption_schemes() -> tuple[str, ...]:
    return encryption.SCHEMES


class NwcError(PaymentError):
    """The wallet answered with an error (``code`` is the NIP-47 error code) or not at all."""


@dataclass(frozen=True)
class NwcUri:
    """A parsed connection URI. The secret is held as :class:`Keys` and never shown."""

    wallet_pubkey: str
    relays: tuple[str, ...]
    keys: Keys = field(repr=False)
    lud16: str | None = None

    @classmethod
    def parse(cls, uri: str) -> NwcUri:
        parts = urlsplit(uri.strip())
        if parts.scheme != "nostr+walletconnect":
            raise NwcError("a Nostr Wallet Connect URI starts with nostr+walletconnect://", code="bad_uri")
        pubkey = (parts.netloc or parts.path).strip("/").lower()
        if len(pubkey) != 64 or any(c not in "0123456789abcdef" for c in pubkey):
            raise NwcError("the NWC URI does not name a 64-hex wallet pubkey", code="bad_uri")
        query = parse_qs(parts.query)
        relays = tuple(r for r in query.get("relay", []) if r)
        secret = (query.get("secret") or [""])[0]
        if not relays or not secret:
            raise NwcError("the NWC URI needs relay= and secret= parameters", code="bad_uri")
        try:
            keys = Keys.parse(secret, source="NWC URI")
        except InvalidKeyError:
            raise NwcError("the NWC URI secret is not a valid key", code="bad_uri") from None
        lud16 = query.get("lud16")
        return cls(pubkey, relays, keys, lud16[0] if lud16 else None)


class NwcClient:
    """One connection to a NIP-47 wallet service; use as ``async with NwcClient(uri) as wallet``."""

    def __init__(
        self,
        uri: str | NwcUri,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        encryption: str | None = None,
    ) -> None:
        """``encryption`` forces a scheme (``"nip44_v2"``/``"nip04"``); by default the wallet's info event decides."""
        self.uri = uri if isinstance(uri, NwcUri) else NwcUri.parse(uri)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        if encryption is not None and encryption not in encryption_schemes():
            raise NwcError(
                f"encryption must be one of {list(encryption_schemes())}, got {encryption!r}", code="bad_encryption"
            )
        self._forced = encryption
        #: The scheme requests use, known after :meth:`connect`.
        self.encryption: str | None = encryption
        #: The schemes the wallet's info event offers (``()`` when it has none or no ``encryption`` tag).
        self.wallet_encryption: tuple[str, ...] = ()
        self._info: Event | None = None
        self._pool: RelayPool | None = None
        self._waiting: dict[str, asyncio.Future[Event]] = {}
        self._sub = new_subscription_id("nwc")

    def __repr__(self) -> str:
        return (
            f"NwcClient(wallet={self.uri.wallet_pubkey[:12]}…, relays={self.uri.relays!r}, "
            f"encryption={self.encryption!r})"
        )

    def _on_event(self, _url: str, _sub: str, event: Event) -> None:
        if event.get("pubkey") != self.uri.wallet_pubkey:
            return
        if event.get("kind") == INFO_KIND:
            newest = self._info is None or event.get("created_at", 0) >= self._info.get("created_at", 0)
            if newest and verify_event(event):
                self._info = event
            return
        if event.get("kind") != RESPONSE_KIND:
            return
        for ref in tag_values(event, "e"):
            fut = self._waiting.get(ref[0]) if ref else None
            if fut is not None and not fut.done() and verify_event(event):
                fut.set_result(event)

    async def connect(self) -> None:
        pool = RelayPool(self.uri.relays, self.uri.keys, self._on_event)
        await pool.connect(self.connect_timeout)
        if not pool.connections:
            raise NwcError("cannot reach the wallet's relays: " + "; ".join(pool.failures.values()), code="unreachable")
        try:
            await self._choose_encryption(pool)
            flt = {"kinds": [RESPONSE_KIND], "authors": [self.uri.wallet_pubkey], "#p": [self.uri.keys.public_key]}
            await pool.subscribe(self._sub, [flt], wait_eose=self.connect_timeout)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def _choose_encryption(self, pool: RelayPool) -> None:
        """Read the wallet's info event and pick NIP-44 v2 when it is offered, else NIP-04."""
        info_sub = new_subscription_id("nwc-info")
        flt = {"kinds": [INFO_KIND], "authors": [self.uri.wallet_pubkey], "limit": 1}
        await pool.subscribe(info_sub, [flt], wait_eose=self.connect_timeout)
        await pool.unsubscribe(info_sub)
        tag = first_tag(self._info, "encryption") if self._info is not None else None
        self.wallet_encryption = encryption.parse_tag(tag[0] if tag else None)
        if self._forced is not None:
            return
        # No info event, or one without an encryption tag: NIP-47 defines that as NIP-04 only.
        offered = self.wallet_encryption or (encryption.NIP04,)
        chosen = encryption.choose(offered)
        if chosen is None:
            raise NwcError(
                f"the wallet offers only encryption {list(offered)}; this client speaks {list(encryption.SCHEMES)}",
                code="UNSUPPORTED_ENCRYPTION",
            )
        self.encryption = chosen

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> NwcClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(self, method: str, params: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send one command and return its ``result``; raise :class:`NwcError` on an error response."""
        if self._pool is None:
            await self.connect()
        assert self._pool is not None and self.encryption is not None
        keys, scheme = self.uri.keys, self.encryption
        payload = json.dumps({"method": method, "params": params})
        content = encryption.encrypt_to(keys, self.uri.wallet_pubkey, payload, scheme)
        tags = [["p", self.uri.wallet_pubkey], ["encryption", scheme]]
        event = sign_event(keys, REQUEST_KIND, tags, content)
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiting[event["id"]] = fut
        try:
            acks = await self._pool.publish(event, self.connect_timeout)
            if not any(ok for ok, _ in acks.values()):
                raise NwcError(f"no wallet relay accepted the {method} request: {acks}", code="relay_rejected")
            try:
                response = await asyncio.wait_for(fut, timeout or self.timeout)
            except asyncio.TimeoutError:
                raise NwcError(f"the wallet did not answer {method} in time", code="timeout") from None
        finally:
            self._waiting.pop(event["id"], None)
        try:
            body = json.loads(encryption.decrypt_from(keys, self.uri.wallet_pubkey, response["content"], scheme))
        except ValueError as exc:  # EncryptionError or bad JSON
            reason = str(exc) if isinstance(exc, encryption.EncryptionError) else "not JSON"
            raise NwcError(
                f"the wallet's response to {method} could not be decrypted or parsed ({reason})", code="bad_response"
            ) from None
        if not isinstance(body, dict):
            raise NwcError("the wallet's response is not a JSON object", code="bad_response")
        error = body.get("error")
        if error:
            code = str(error.get("code", "OTHER")) if isinstance(error, dict) else "OTHER"
            message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
            raise NwcError(f"wallet refused {method}: {code}: {message}", code=code)
        if body.get("result_type") not in (None, method):
            raise NwcError(f"the wallet answered {body.get('result_type')!r} to {method}", code="bad_response")
        result = body.get("result")
        return result if isinstance(result, dict) else {}

    async def pay_invoice(self, bolt11: str) -> PaymentProof:
        result = await self.request("pay_invoice", {"invoice": bolt11})
        preimage = result.get("preimage")
        fees = result.get("fees_paid", 0)
        return PaymentProof(
            amount_msats=0,
            preimage=str(preimage) if preimage else None,
            fee_msats=int(fees) if isinstance(fees, int) else 0,
            wallet="nwc",
        )

    async def make_invoice(self, amount_msats: int, description: str = "", expiry: int = 600) -> str:
        result = await self.request(
            "make_invoice", {"amount": amount_msats, "description": description, "expiry": expiry}
        )
        invoice = result.get("invoice")
        if not isinstance(invoice, str) or not invoice:
            raise NwcError("make_invoice returned no invoice", code="bad_response")
        return invoice

    async def lookup_invoice(self, payment_hash: str) -> dict[str, Any]:
        return await self.request("lookup_invoice", {"payment_hash": payment_hash})

    async def get_balance(self) -> int:
        return int((await self.request("get_balance", {})).get("balance", 0))

    async def wait_paid(self, payment_hash: str, timeout: float, *, interval: float = 0.05) -> bool:
        """Poll ``lookup_invoice`` until the invoice is settled or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            info = await self.lookup_invoice(payment_hash)
            if info.get("settled_at") or info.get("state") == "settled":
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 0.5)


async def _pay_once(uri: str, bolt11: str, amount_msats: int, timeout: float) -> PaymentProof:
    async with NwcClient(uri, timeout=timeout) as wallet:
        proof = await wallet.pay_invoice(bolt11)
    return PaymentProof(amount_msats=amount_msats, preimage=proof.preimage, fee_msats=proof.fee_msats, wallet="nwc")


def pay_invoice_sync(uri: str, bolt11: str, amount_msats: int, context: PaymentContext | None = None) -> PaymentProof:
    """Pay through NWC from synchronous code (the ``dsrs_pay_invoice`` hook), on a private event loop."""
    timeout = float(os.environ.get("PYLON_NWC_TIMEOUT", "30") or 30)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_pay_once(uri, bolt11, amount_msats, timeout))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # called from inside a loop
        return pool.submit(asyncio.run, _pay_once(uri, bolt11, amount_msats, timeout)).result()


def response_for(event: Event) -> str | None:
    """The request id a response event answers (its ``e`` tag)."""
    tag = first_tag(event, "e")
    return tag[0] if tag else None
