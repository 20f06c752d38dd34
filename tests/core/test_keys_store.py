"""Stored keys (``keys.json`` in the config dir) and the env_first fallback to them."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from dsrs import _keys
from dsrs._keys import KeysFileWarning, delete_key, keys_path, load_keys, mask, set_key
from dsrs.wire import env_first

VALUE = "sk-stored-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DSRS_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.delenv("ACME_OTHER_KEY", raising=False)
    return tmp_path / "cfg"


def test_set_list_delete_and_mode(config: Path) -> None:
    path = set_key("ACME_API_KEY", f"  {VALUE}\n")
    assert path == config / "keys.json" == keys_path()
    assert load_keys() == {"ACME_API_KEY": VALUE}
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert [p.name for p in config.iterdir()] == ["keys.json"]  # no temporary file left behind
    assert delete_key("ACME_API_KEY") is True and delete_key("ACME_API_KEY") is False
    assert load_keys() == {}


def test_env_first_reads_the_environment_then_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_first(("ACME_API_KEY",)) is None
    set_key("ACME_OTHER_KEY", VALUE)
    assert env_first(("ACME_API_KEY", "ACME_OTHER_KEY")) == VALUE
    monkeypatch.setenv("ACME_OTHER_KEY", "from-env")
    assert env_first(("ACME_API_KEY", "ACME_OTHER_KEY")) == "from-env"
    monkeypatch.setenv("ACME_API_KEY", "first-env")
    assert env_first(("ACME_API_KEY", "ACME_OTHER_KEY")) == "first-env"


def test_bad_names_and_values_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"environment-variable name like OPENAI_API_KEY, got 'no spaces please'"):
        set_key("no spaces please", VALUE)
    with pytest.raises(ValueError, match="the value for ACME_API_KEY is empty"):
        set_key("ACME_API_KEY", "   ")
    with pytest.raises(ValueError, match="line break") as info:
        set_key("ACME_API_KEY", "abc\ndef")
    assert "abc" not in str(info.value)


def test_a_malformed_file_warns_once_without_the_secret_and_reads_empty(config: Path) -> None:
    config.mkdir()
    (config / "keys.json").write_text('{"ACME_API_KEY": "' + VALUE + '",,,')
    with pytest.warns(KeysFileWarning) as caught:
        found = env_first(("ACME_API_KEY",))
    assert found is None and len(caught) == 1 and VALUE not in str(caught[0].message)
    assert load_keys() == {}  # the same file again: no second warning (pytest turns warnings into errors)
    with pytest.raises(ValueError, match="not valid JSON"):
        set_key("ACME_API_KEY", VALUE)  # never overwrite a file we could not read


def test_wrong_types_and_huge_files(config: Path) -> None:
    config.mkdir()
    (config / "keys.json").write_text(json.dumps({"ACME_API_KEY": 42, "ACME_OTHER_KEY": VALUE, "bad name": "x"}))
    assert load_keys() == {"ACME_OTHER_KEY": VALUE}
    (config / "keys.json").write_text(json.dumps(["not", "an", "object"]))
    with pytest.warns(KeysFileWarning):
        assert load_keys() == {}
    (config / "keys.json").write_bytes(b" " * (_keys._MAX_FILE_BYTES + 1))
    with pytest.warns(KeysFileWarning, match="more than a keys file holds"):
        assert load_keys() == {}


def test_mask_never_shows_a_short_key_and_only_the_tail_of_a_long_one() -> None:
    assert mask("short-key") == "****"
    assert mask(VALUE) == "****ghij" and VALUE[:-4] not in mask(VALUE)
