"""BIP-39: the shipped word list, the checksum, typo errors; NIP-06 identities only from valid mnemonics."""

from __future__ import annotations

import hashlib
import secrets
from importlib import resources

import pytest

from dsrs_pylon import bip39
from dsrs_pylon.keys import InvalidKeyError, Keys, load_keys

NIP06_WORDS = "leader monkey parrot ring guide accident before fence cannon height naive bean"

# BIP-39 reference vectors (trezor/python-mnemonic vectors.json): entropy -> mnemonic.
VECTORS = [
    ("00000000000000000000000000000000", "abandon " * 11 + "about"),
    ("7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f", "legal winner thank year wave sausage worth useful legal winner thank yellow"),
    (
        "80808080808080808080808080808080",
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
    ),
    ("ffffffffffffffffffffffffffffffff", "zoo " * 11 + "wrong"),
    ("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "zoo " * 23 + "vote"),
]


def test_wordlist_is_the_bip39_english_list() -> None:
    raw = resources.files("dsrs_pylon").joinpath("data", "bip39-english.txt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == bip39.WORDLIST_SHA256
    words = bip39.wordlist()
    assert len(words) == 2048 == len(set(words)) and list(words) == sorted(words)
    assert len({w[:4] for w in words}) == 2048  # the spec's unique four-letter prefixes
    assert (words[0], words[-1]) == ("abandon", "zoo")


@pytest.mark.parametrize(("entropy", "words"), VECTORS)
def test_reference_vectors(entropy: str, words: str) -> None:
    assert bip39.entropy_to_mnemonic(bytes.fromhex(entropy)) == words
    assert bip39.check_mnemonic(words) == words


def test_agrees_with_the_reference_implementation() -> None:
    """trezor's python-mnemonic (the BIP-39 reference) on random entropy of every length."""
    mnemonic = pytest.importorskip("mnemonic")
    ref = mnemonic.Mnemonic("english")
    for size in (16, 20, 24, 28, 32):
        for _ in range(20):
            entropy = secrets.token_bytes(size)
            words = bip39.entropy_to_mnemonic(entropy)
            assert words == ref.to_mnemonic(entropy)
            assert bip39.check_mnemonic(words) == words
            broken = words.split()
            broken[-1] = next(
                w for w in bip39.wordlist() if w != broken[-1] and not ref.check(" ".join([*broken[:-1], w]))
            )
            with pytest.raises(bip39.Bip39Error, match="checksum"):
                bip39.check_mnemonic(" ".join(broken))


@pytest.mark.parametrize(
    ("typo", "word", "position", "closest"),
    [("monkee", "monkee", 2, "monkey"), ("beam", "beam", 12, "bean"), ("Leader", "Leader", 1, "leader")],
)
def test_a_wrong_word_is_named_with_the_closest_list_word(typo: str, word: str, position: int, closest: str) -> None:
    words = NIP06_WORDS.split()
    words[position - 1] = typo
    with pytest.raises(InvalidKeyError) as info:
        Keys.from_mnemonic(" ".join(words))
    message = str(info.value)
    assert f"word {position}" in message and repr(word) in message and repr(closest) in message
    assert "fence" not in message and "cannon" not in message  # the rest of the mnemonic is not shown


def test_a_bad_checksum_is_named() -> None:
    swapped = NIP06_WORDS.split()
    swapped[10], swapped[11] = swapped[11], swapped[10]
    with pytest.raises(InvalidKeyError, match="checksum") as info:
        Keys.from_mnemonic(" ".join(swapped))
    assert "naive" not in str(info.value)


def test_typo_in_the_environment_is_an_error_not_another_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLON_MNEMONIC", NIP06_WORDS.replace("parrot", "parrots"))
    with pytest.raises(InvalidKeyError, match=r"'parrots'.*'parrot'"):
        load_keys()
    monkeypatch.setenv("PYLON_MNEMONIC", "  " + NIP06_WORDS.replace(" ", "   ") + "\n")
    assert load_keys().public_key == "17162c921dc4d2518f9a101db33695df1afb56ab82f5ff3e5da6eec3ca5cd917"


def test_word_counts() -> None:
    with pytest.raises(bip39.Bip39Error, match="got 11"):
        bip39.check_mnemonic(" ".join(NIP06_WORDS.split()[:11]))
    with pytest.raises(bip39.Bip39Error, match="got 17"):
        bip39.entropy_to_mnemonic(bytes(17))


def test_cli_reports_a_mnemonic_typo_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dsrs_pylon.cli import main

    monkeypatch.setenv("PYLON_MNEMONIC", NIP06_WORDS.replace("guide", "guid"))
    assert main(["whoami"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert "word 5 of the mnemonic, 'guid'" in err and "(closest: 'guide')" in err
    assert "accident" not in err  # the other words stay out of the output
