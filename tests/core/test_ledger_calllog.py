"""The prompt log's writer side: secrets masked in every shape dsrs.errors knows, rows from records."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

import dsrs
from dsrs import _calllog
from dsrs._calllog import CallLog, read_logs, scrub
from dsrs._usage import UsageRecord

SHAPES = [
    "sk-proj-abcdefghijklmnop",
    "gsk_abcdefghijklmnop",
    "AIzaSyA-abcdefghijklmnopqrstuvw",
    "nsec1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    "Bearer abcdefghijklmnop",
    "BEARER abcdefghijklmnop",
    "api_key=abcdefghijklmnop",
    "X-Api-Key: abcdefghijklmnop",
]


@pytest.mark.parametrize("secret", SHAPES)
def test_every_credential_shape_is_masked(secret: str) -> None:
    out = scrub(f"before {secret} after", ())
    assert "abcdefghijklmnop" not in out and "qqqqqqqq" not in out
    assert out.startswith("before ") and out.endswith(" after")


def test_known_values_are_masked_and_plain_text_is_untouched() -> None:
    assert scrub("my key is hunter2-but-longer ok", ("hunter2-but-longer",)) == "my key is *** ok"
    plain = "An ordinary answer about skies, grasps and bears."
    assert scrub(plain, ()) == plain
    assert _calllog._patterns()[1] is True  # every pattern has a literal to look for first


def test_a_row_holds_the_request_and_answer_without_secret_options(tmp_path: Path) -> None:
    lm = dsrs.LM("fake:echo")
    request = lm.build_request("tell me", temperature=0.5)
    request = replace(request, options={"api_key": "option-secret-value", "top_p": 0.9})
    response = lm.call("tell me")
    log = CallLog(tmp_path / "logs.sqlite3")
    log.record(
        UsageRecord(
            provider="fake", model="echo", usage=response.usage, request=request, response=response,
            timestamp=time.time(), request_id="r-1", latency_s=0.01,
        )
    )  # fmt: skip
    log.close()
    (entry,) = read_logs(tmp_path / "logs.sqlite3")
    assert entry["request"]["messages"] == [{"role": "user", "content": "tell me"}]
    assert entry["request"]["temperature"] == 0.5 and entry["response"] == "tell me"
    assert entry["request_id"] == "r-1" and entry["usage"]["prompt_tokens"] == response.usage.prompt_tokens
    assert entry["request"]["options"] == {"api_key": "***", "top_p": 0.9}
    assert b"option-secret-value" not in b"".join(p.read_bytes() for p in tmp_path.glob("logs.sqlite3*"))
