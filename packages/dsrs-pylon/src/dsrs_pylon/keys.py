"""Nostr identity: a secp256k1 key pair, from a NIP-06 mnemonic, an ``nsec``/hex key, a file, or fresh.

The secret never appears in ``repr``/``str``, logs or errors. Resolution order of :func:`load_keys`
(first match wins): explicit argument, ``PYLON_NSEC`` (nsec or 64-hex), ``PYLON_MNEMONIC`` (BIP-39
words, optional ``PYLON_MNEMONIC_PASSPHRASE``), ``PYLON_KEY_FILE`` (a file holding an nsec, hex key or
mnemonic), else a fresh ephemeral key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import unicodedata
from pathlib import Path

import coincurve

from dsrs_pylon.bech32 import Bech32Error, bech32_decode, bech32_encode, convertbits
from dsrs_pylon.bip39 import Bip39Error, check_mnemonic

__all__ = [
    "NOSTR_DERIVATION_PATH",
    "InvalidKeyError",
    "Keys",
    "derive_bip32",
    "load_keys",
    "mnemonic_to_seed",
    "npub_to_hex",
]

#: NIP-06: BIP-32 path of account 0.
NOSTR_DERIVATION_PATH = "m/44'/1237'/0'/0/0"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HARDENED = 0x80000000


class InvalidKeyError(ValueError):
    """A key, nsec or mnemonic could not be parsed.

    The message never contains the secret; for a mnemonic it names only the one word that is not a
    BIP-39 word (and the list word it is closest to), so the typo can be found.
    """


def mnemonic_to_seed(mnemonic: str, passphrase: str = "") -> bytes:
    """BIP-39 seed: PBKDF2-HMAC-SHA512 over the NFKD-normalised words, 2048 rounds."""
    words = unicodedata.normalize("NFKD", " ".join(mnemonic.split()))
    if len(words.split(" ")) not in (12, 15, 18, 21, 24):
        raise InvalidKeyError("a BIP-39 mnemonic has 12, 15, 18, 21 or 24 words")
    salt = unicodedata.normalize("NFKD", "mnemonic" + passphrase)
    return hashlib.pbkdf2_hmac("sha512", words.encode("utf-8"), salt.encode("utf-8"), 2048)


def _parse_path(path: str) -> list[int]:
    parts = path.split("/")
    if parts[0] != "m":
        raise InvalidKeyError(f"derivation path must start with 'm', got {path!r}")
    out = []
    for p in parts[1:]:
        hardened = p.endswith(("'", "h", "H"))
        index = int(p.rstrip("'hH"))
        out.append(index + _HARDENED if hardened else index)
    return out


def derive_bip32(seed: bytes, path: str = NOSTR_DERIVATION_PATH) -> bytes:
    """The BIP-32 private key at ``path`` below the master key of ``seed``."""
    digest = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    key, chain = digest[:32], digest[32:]
    if not 0 < int.from_bytes(key, "big") < _N:
        raise InvalidKeyError("invalid master key (seed yields an out-of-range key)")
    for index in _parse_path(path):
        if index >= _HARDENED:
            data = b"\x00" + key + index.to_bytes(4, "big")
        else:
            data = coincurve.PublicKey.from_secret(key).format(compressed=True) + index.to_bytes(4, "big")
        digest = hmac.new(chain, data, hashlib.sha512).digest()
        il, chain = int.from_bytes(digest[:32], "big"), digest[32:]
        child = (il + int.from_bytes(key, "big")) % _N
        if il >= _N or child == 0:
            raise InvalidKeyError("invalid child key at this index (BIP-32: use the next index)")
        key = child.to_bytes(32, "big")
    return key


def npub_to_hex(value: str) -> str:
    """An ``npub1...`` or 64-hex public key, as lowercase hex."""
    value = value.strip()
    if value.startswith("npub1"):
        hrp, data = bech32_decode(value)
        raw = bytes(convertbits(data, 5, 8, pad=False))
        if hrp != "npub" or len(raw) != 32:
            raise InvalidKeyError("not a valid npub")
        return raw.hex()
    if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    raise InvalidKeyError(f"not a public key (npub or 64 hex chars): {value[:12]!r}...")


class Keys:
    """A Nostr key pair. ``public_key`` is the x-only key as lowercase hex."""

    __slots__ = ("_private", "_secret", "public_key", "source")

    def __init__(self, secret: bytes, *, source: str = "explicit") -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < _N:
            raise InvalidKeyError("a secret key is 32 bytes in 1..n-1")
        self._secret = secret
        self._private = coincurve.PrivateKey(secret)
        self.public_key = coincurve.PublicKeyXOnly.from_secret(secret).format().hex()
        self.source = source

    @classmethod
    def generate(cls) -> Keys:
        """A fresh random (ephemeral) key."""
        while True:
            secret = secrets.token_bytes(32)
            if 0 < int.from_bytes(secret, "big") < _N:
                return cls(secret, source="ephemeral")

    @classmethod
    def from_mnemonic(cls, mnemonic: str, passphrase: str = "", account: int = 0) -> Keys:
        """NIP-06: BIP-39 seed, then BIP-32 ``m/44'/1237'/<account>'/0/0``.

        The words and the checksum are checked first (:func:`dsrs_pylon.bip39.check_mnemonic`): a typo
        is an :class:`InvalidKeyError` naming the word (and the closest list word) or the checksum,
        never a silently different identity.
        """
        try:
            words = check_mnemonic(mnemonic)
        except Bip39Error as exc:
            raise InvalidKeyError(str(exc)) from None
        seed = mnemonic_to_seed(words, passphrase)
        return cls(derive_bip32(seed, f"m/44'/1237'/{account}'/0/0"), source="mnemonic")

    @classmethod
    def parse(cls, value: str, *, source: str = "explicit") -> Keys:
        """An ``nsec1...``, a 64-hex secret, or a mnemonic."""
        value = value.strip()
        if value.startswith("nsec1"):
            try:
                hrp, data = bech32_decode(value)
                raw = bytes(convertbits(data, 5, 8, pad=False))
            except Bech32Error:
                raise InvalidKeyError("invalid nsec (bad bech32)") from None
            if hrp != "nsec" or len(raw) != 32:
                raise InvalidKeyError("invalid nsec")
            return cls(raw, source=source)
        if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
            return cls(bytes.fromhex(value), source=source)
        if len(value.split()) in (12, 15, 18, 21, 24):
            keys = cls.from_mnemonic(value)
            keys.source = source
            return keys
        raise InvalidKeyError("not a key: expected nsec1..., 64 hex characters or a BIP-39 mnemonic")

    @property
    def npub(self) -> str:
        return bech32_encode("npub", convertbits(bytes.fromhex(self.public_key), 8, 5))

    def nsec(self) -> str:
        """The secret as ``nsec1...`` (a method, so it is never shown by accident)."""
        return bech32_encode("nsec", convertbits(self._secret, 8, 5))

    def secret_hex(self) -> str:
        return self._secret.hex()

    def sign(self, digest: bytes) -> bytes:
        """BIP-340 Schnorr signature of a 32-byte digest, with fresh auxiliary randomness."""
        return bytes(self._private.sign_schnorr(digest, secrets.token_bytes(32)))

    def shared_x(self, peer_public_key_hex: str) -> bytes:
        """The unhashed X coordinate of the ECDH point with a peer's x-only key (NIP-04)."""
        point = coincurve.PublicKey(b"\x02" + bytes.fromhex(peer_public_key_hex))
        return bytes(point.multiply(self._secret).format(compressed=True)[1:33])

    def conversation_key(self, peer_public_key_hex: str) -> bytes:
        """The NIP-44 v2 conversation key with a peer's x-only key (the same from both sides)."""
        from dsrs_pylon.nip44 import get_conversation_key

        return get_conversation_key(self._secret, bytes.fromhex(peer_public_key_hex))

    def to_dict(self) -> dict[str, str]:
        """Public, stable description (used in cache keys): never the secret."""
        return {"pubkey": self.public_key}

    def __repr__(self) -> str:
        return f"Keys(npub={self.npub!r}, source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keys) and other.public_key == self.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Keys are not picklable (they hold a secret)")

    def __copy__(self) -> Keys:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Keys:
        return self  # immutable


def load_keys(value: str | Keys | None = None, *, key_file: str | os.PathLike[str] | None = None) -> Keys:
    """Resolve the identity: argument, ``PYLON_NSEC``, ``PYLON_MNEMONIC``, key file, else ephemeral."""
    if isinstance(value, Keys):
        return value
    if value:
        return Keys.parse(value)
    env_nsec = os.environ.get("PYLON_NSEC", "").strip()
    if env_nsec:
        return Keys.parse(env_nsec, source="PYLON_NSEC")
    env_words = os.environ.get("PYLON_MNEMONIC", "").strip()
    if env_words:
        keys = Keys.from_mnemonic(env_words, os.environ.get("PYLON_MNEMONIC_PASSPHRASE", ""))
        keys.source = "PYLON_MNEMONIC"
        return keys
    path = key_file or os.environ.get("PYLON_KEY_FILE", "").strip()
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidKeyError(f"cannot read key file {str(path)!r}: {exc.strerror}") from None
        return Keys.parse(text, source="key file")
    return Keys.generate()
