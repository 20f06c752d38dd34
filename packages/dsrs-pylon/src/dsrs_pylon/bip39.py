"""BIP-39 mnemonics: the English word list and the checksum.

The word list ships as package data (``data/bip39-english.txt``), byte for byte the list of the
BIP-39 specification (https://github.com/bitcoin/bips/blob/master/bip-0039/english.txt,
SHA-256 ``2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda``).

A mnemonic of ``n`` words encodes ``11 n`` bits: the entropy, then ``n / 3`` checksum bits, the
first bits of SHA-256(entropy). A typo almost always breaks either the list or the checksum, which
is why both are checked before a mnemonic becomes an identity.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["WORD_COUNTS", "Bip39Error", "check_mnemonic", "closest_word", "entropy_to_mnemonic", "wordlist"]

WORD_COUNTS = (12, 15, 18, 21, 24)
#: SHA-256 of the English list of the BIP-39 specification.
WORDLIST_SHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"


class Bip39Error(ValueError):
    """A mnemonic is not a valid BIP-39 English mnemonic."""


@lru_cache(maxsize=1)
def _load() -> tuple[tuple[str, ...], dict[str, int]]:
    raw = resources.files("dsrs_pylon").joinpath("data/bip39-english.txt").read_bytes()
    if hashlib.sha256(raw).hexdigest() != WORDLIST_SHA256:  # a damaged install must not accept typos
        raise RuntimeError("dsrs_pylon/data/bip39-english.txt is not the BIP-39 English word list")
    words = tuple(raw.decode("ascii").split())
    return words, {w: i for i, w in enumerate(words)}


def wordlist() -> tuple[str, ...]:
    """The 2048 English words, in BIP-39 order."""
    return _load()[0]


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (typos are one or two edits; the list has 2048 short words)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def closest_word(word: str) -> str:
    """The list word a typo most likely meant: fewest edits, then the longest common prefix."""
    words, index = _load()
    lower = word.lower()
    if lower in index:
        return lower
    return min(words, key=lambda w: (_distance(lower, w), -_common_prefix(lower, w)))


def entropy_to_mnemonic(entropy: bytes) -> str:
    """The mnemonic of 16, 20, 24, 28 or 32 bytes of entropy."""
    if len(entropy) not in (16, 20, 24, 28, 32):
        raise Bip39Error(f"BIP-39 entropy is 16, 20, 24, 28 or 32 bytes, got {len(entropy)}")
    words, _ = _load()
    cs_bits = len(entropy) * 8 // 32
    checksum = hashlib.sha256(entropy).digest()[0] >> (8 - cs_bits)
    bits = (int.from_bytes(entropy, "big") << cs_bits) | checksum
    count = (len(entropy) * 8 + cs_bits) // 11
    return " ".join(words[(bits >> (11 * (count - 1 - i))) & 0x7FF] for i in range(count))


def check_mnemonic(mnemonic: str) -> str:
    """The normalised mnemonic (NFKD, single spaces) if its words and checksum are valid.

    Raises :class:`Bip39Error` naming the first word not on the list (its position and the closest
    list word), or saying the checksum does not match.
    """
    words = unicodedata.normalize("NFKD", mnemonic).split()
    if len(words) not in WORD_COUNTS:
        raise Bip39Error(f"a BIP-39 mnemonic has 12, 15, 18, 21 or 24 words, got {len(words)}")
    _, index = _load()
    bits = 0
    for position, word in enumerate(words, 1):
        value = index.get(word)
        if value is None:
            raise Bip39Error(
                f"word {position} of the mnemonic, {word!r}, is not in the BIP-39 English word list "
                f"(closest: {closest_word(word)!r})"
            )
        bits = (bits << 11) | value
    cs_bits = len(words) // 3
    entropy = (bits >> cs_bits).to_bytes(len(words) * 4 // 3, "big")  # ENT = 32 n / 3 bits
    if hashlib.sha256(entropy).digest()[0] >> (8 - cs_bits) != bits & ((1 << cs_bits) - 1):
        raise Bip39Error(
            f"the mnemonic's BIP-39 checksum does not match ({cs_bits} checksum bits): "
            "a word is wrong or the words are out of order"
        )
    return " ".join(words)
