"""Content parts on llama-server (the gptoss provider's chat body): images only with a projector.

llama.cpp ``docs/multimodal.md``: llama-server takes ``image_url`` parts on ``/chat/completions``
only when started with a multimodal projector (``--mmproj``); the provider is told so with
``vision=True``. Without it, and always for audio and files here, a part is refused before sending.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

import dsrs
from dsrs.types import Audio, File, Image, Message, UnsupportedPartError

pytest.importorskip("dsrs_gptoss")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 8


def _body(lm: dsrs.LM, content: Any) -> dict[str, Any]:
    provider: Any = lm.provider()
    return provider.build_body(lm.build_request([Message("user", content)]))  # type: ignore[no-any-return]


def test_image_part_is_sent_as_image_url_with_a_projector() -> None:
    lm = dsrs.LM("llamacpp:gemma-3-4b-it", base_url="http://127.0.0.1:9", auto_start=False, vision=True)
    content = _body(lm, ("what is this?", Image.from_bytes(PNG, "image/png")))["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
    ]


def test_vision_is_not_sent_to_the_server() -> None:
    lm = dsrs.LM("llamacpp:gemma-3-4b-it", base_url="http://127.0.0.1:9", auto_start=False, vision=True)
    assert "vision" not in _body(lm, "hi")


@pytest.mark.parametrize(
    ("vision", "part"),
    [
        (False, Image.from_bytes(PNG, "image/png")),
        (True, Audio.from_bytes(b"RIFF....WAVE", "audio/wav")),
        (True, File.from_bytes(b"%PDF", "application/pdf")),
    ],
)
def test_parts_the_model_cannot_take_are_refused(vision: bool, part: Any) -> None:
    lm = dsrs.LM("llamacpp:gpt-oss-20b", base_url="http://127.0.0.1:9", auto_start=False, vision=vision)
    with pytest.raises(UnsupportedPartError, match=type(part).__name__):
        _body(lm, ("hi", part))


def test_harmony_prompts_refuse_media() -> None:
    lm = dsrs.LM("llamacpp:gpt-oss-20b", base_url="http://127.0.0.1:9", auto_start=False, harmony=True)
    provider: Any = lm.provider()
    with pytest.raises(UnsupportedPartError, match="Harmony"):
        provider.build_harmony_body(lm.build_request([Message("user", ("hi", Image.from_bytes(PNG, "image/png")))]))
