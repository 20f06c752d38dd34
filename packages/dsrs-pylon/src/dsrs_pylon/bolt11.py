"""A minimal BOLT-11 invoice codec: amount, payment hash, description, expiry, payee, signature.

:func:`decode` is what the spend policy relies on: it checks the bech32 checksum, parses the
amount from the human-readable part (``m``/``u``/``n``/``p`` multipliers, ``p`` amounts must end in
0) and verifies the invoice signature (against the ``n`` field, or by key recovery). :func:`encode`
builds signed invoices for the test ledger and local wallets.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import coincurve

from dsrs_pylon.bech32 import Bech32Error, bech32_decode, bech32_encode, convertbits

__all__ = ["Bolt11Error", "Invoice", "amount_to_hrp", "decode", "encode"]

MSATS_PER_BTC = 100_000_000_000
_MULTIPLIER_MSATS = {"m": 100_000_000, "u": 100_000, "n": 100}
_HRP = re.compile(r"^ln(bcrt|bc|tbs|tb|sb)(?:(\d+)([munp]?))?$")
_TAG_P, _TAG_S, _TAG_D, _TAG_N, _TAG_H, _TAG_X = 1, 16, 13, 19, 23, 6
_SIG_GROUPS = 104  # 520 bits: 64-byte signature + recovery id


class Bolt11Error(ValueError):
    """Not a valid BOLT-11 invoice."""


@dataclass(frozen=True, slots=True)
class Invoice:
    """The parts of a decoded invoice the client and wallets need."""

    bolt11: str
    currency: str
    amount_msats: int | None
    timestamp: int
    payment_hash: str
    description: str | None
    expiry: int
    payee: str

    @property
    def expires_at(self) -> int:
        return self.timestamp + self.expiry

    def is_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires_at


def _hrp_amount(digits: str | None, multiplier: str) -> int | None:
    if not digits:
        if multiplier:
            raise Bolt11Error("invoice amount has a multiplier but no digits")
        return None
    if digits.startswith("0"):
        raise Bolt11Error("invoice amount has leading zeros")
    value = int(digits)
    if multiplier == "p":
        if value % 10:
            raise Bolt11Error("a pico-BTC amount must end in 0 (sub-msat amounts cannot be paid)")
        return value // 10
    if multiplier:
        return value * _MULTIPLIER_MSATS[multiplier]
    return value * MSATS_PER_BTC


def _to_int(groups: list[int]) -> int:
    out = 0
    for g in groups:
        out = out << 5 | g
    return out


def decode(bolt11: str) -> Invoice:
    """Decode and verify an invoice; raise :class:`Bolt11Error` on anything invalid."""
    text = bolt11.strip()
    if text.lower().startswith("lightning:"):
        text = text[len("lightning:") :]
    try:
        hrp, data = bech32_decode(text)
    except Bech32Error as exc:
        raise Bolt11Error(f"not a bech32 invoice: {exc}") from None
    m = _HRP.match(hrp)
    if m is None:
        raise Bolt11Error(f"unknown invoice prefix or malformed amount in {hrp!r}")
    currency, digits, multiplier = m.group(1), m.group(2), m.group(3) or ""
    amount = _hrp_amount(digits, multiplier)
    if len(data) < 7 + _SIG_GROUPS:
        raise Bolt11Error("invoice too short")
    timestamp = _to_int(data[:7])
    fields, sig_groups = data[7:-_SIG_GROUPS], data[-_SIG_GROUPS:]
    payment_hash: str | None = None
    description: str | None = None
    expiry = 3600
    payee: bytes | None = None
    i = 0
    while i < len(fields):
        if i + 3 > len(fields):
            raise Bolt11Error("truncated tagged field")
        tag, length = fields[i], fields[i + 1] * 32 + fields[i + 2]
        value = fields[i + 3 : i + 3 + length]
        if len(value) != length:
            raise Bolt11Error("truncated tagged field")
        i += 3 + length
        if tag == _TAG_P and length == 52 and payment_hash is None:
            payment_hash = bytes(convertbits(value, 5, 8, pad=False)).hex()
        elif tag == _TAG_D and description is None:
            try:
                description = bytes(convertbits(value, 5, 8, pad=False)).decode("utf-8")
            except (Bech32Error, UnicodeDecodeError):
                raise Bolt11Error("invoice description is not valid UTF-8") from None
        elif tag == _TAG_X:
            expiry = _to_int(value)
        elif tag == _TAG_N and length == 53:
            payee = bytes(convertbits(value, 5, 8, pad=False))
    if payment_hash is None:
        raise Bolt11Error("invoice has no payment hash")
    sig = bytes(convertbits(sig_groups, 5, 8, pad=False))
    message = hrp.encode("utf-8") + bytes(convertbits(data[:-_SIG_GROUPS], 5, 8, pad=True))
    if sig[64] > 3:
        raise Bolt11Error("invalid signature recovery id")
    try:
        recovered = coincurve.PublicKey.from_signature_and_message(sig, message).format(compressed=True)
    except (ValueError, TypeError, Exception) as exc:  # coincurve raises plain Exception subclasses
        raise Bolt11Error(f"invoice signature does not verify: {exc}") from None
    if payee is not None and recovered != payee:
        raise Bolt11Error("invoice signature does not match its payee (n field)")
    return Invoice(
        bolt11=text.lower(),
        currency=currency,
        amount_msats=amount,
        timestamp=timestamp,
        payment_hash=payment_hash,
        description=description,
        expiry=expiry,
        payee=(payee or recovered).hex(),
    )


def amount_to_hrp(amount_msats: int) -> str:
    """The shortest HRP amount for ``amount_msats`` (``"2500u"``, ``"10n"``, ``"15p"``...)."""
    if amount_msats <= 0:
        raise ValueError("amount must be positive")
    if amount_msats % MSATS_PER_BTC == 0:
        return str(amount_msats // MSATS_PER_BTC)
    for letter in ("m", "u", "n"):
        unit = _MULTIPLIER_MSATS[letter]
        if amount_msats % unit == 0:
            return f"{amount_msats // unit}{letter}"
    return f"{amount_msats * 10}p"


def _field(tag: int, groups: list[int]) -> list[int]:
    if len(groups) >= 1024:
        raise ValueError("tagged field too long")
    return [tag, len(groups) >> 5, len(groups) & 31, *groups]


def _int_groups(value: int) -> list[int]:
    groups: list[int] = []
    while True:
        groups.insert(0, value & 31)
        value >>= 5
        if not value:
            return groups


def encode(
    *,
    amount_msats: int | None,
    payment_hash: bytes,
    node_secret: bytes,
    description: str = "",
    timestamp: int | None = None,
    expiry: int = 3600,
    payment_secret: bytes | None = None,
    currency: str = "bcrt",
) -> str:
    """A signed invoice (payee key ``node_secret``)."""
    if len(payment_hash) != 32:
        raise ValueError("payment_hash must be 32 bytes")
    hrp = "ln" + currency + (amount_to_hrp(amount_msats) if amount_msats else "")
    ts = int(time.time()) if timestamp is None else timestamp
    data = [(ts >> (5 * (6 - i))) & 31 for i in range(7)]
    data += _field(_TAG_P, convertbits(payment_hash, 8, 5))
    if payment_secret is not None:
        data += _field(_TAG_S, convertbits(payment_secret, 8, 5))
    data += _field(_TAG_D, convertbits(description.encode("utf-8"), 8, 5))
    if expiry != 3600:
        data += _field(_TAG_X, _int_groups(expiry))
    message = hrp.encode("utf-8") + bytes(convertbits(data, 5, 8, pad=True))
    signature = coincurve.PrivateKey(node_secret).sign_recoverable(message)
    data += convertbits(signature, 8, 5)
    return bech32_encode(hrp, data)
