"""Content parts: what a message carries besides plain text.

A message's content is a string or a sequence of parts. :class:`Text` is a piece of text;
:class:`Image`, :class:`Audio` and :class:`File` (PDFs and other documents) hold bytes or a URL.
Parts are immutable and identified by the SHA-256 of their bytes (or of their URL), which is what
cache keys use. ``options`` carries per-part provider options that some wires understand, e.g.
``Text("long context", options={"cache_control": {"type": "ephemeral"}})`` for Anthropic's prompt
cache; a codec reads the keys it knows and ignores the rest.

Every codec either encodes a part or raises :class:`UnsupportedPartError` (an
:class:`~dsrs.errors.InvalidRequestError`) naming the provider and the part type *before anything
is sent*: a part is never dropped.

>>> img = Image.from_bytes(b"\\x89PNG...", "image/png")
>>> img.media_type, len(img.sha256)
('image/png', 64)
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from dsrs.errors import InvalidRequestError

__all__ = ["Audio", "File", "Image", "Media", "Part", "Text", "UnsupportedPartError", "part_from_dict"]


class UnsupportedPartError(InvalidRequestError):
    """A content part the provider's wire (or the model) cannot carry; raised before sending."""


@dataclass(frozen=True, slots=True)
class Text:
    """A piece of text in a message, with optional per-part provider options."""

    text: str
    options: Mapping[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Text(text=...) must be a str, got {type(self.text).__name__}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "text", "text": self.text}
        if self.options:
            d["options"] = dict(self.options)
        return d


@dataclass(frozen=True, slots=True)
class Media:
    """Bytes or a URL with a media type. Use :class:`Image`, :class:`Audio` or :class:`File`."""

    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    media_type: str = "application/octet-stream"
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    sha256: str = field(default="", init=False, compare=False)

    kind: ClassVar[str] = "media"
    #: The top-level media type a subclass accepts (``"image"``), or ``""`` for any.
    family: ClassVar[str] = ""

    def __post_init__(self) -> None:
        what = type(self).__name__
        if (self.data is None) == (self.url is None):
            raise ValueError(f"{what} needs exactly one of data= or url=")
        if self.data is not None and not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise TypeError(f"{what}(data=...) must be bytes, got {type(self.data).__name__}")
        if self.data is not None and not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        if self.url is not None and not isinstance(self.url, str):
            raise TypeError(f"{what}(url=...) must be a str, got {type(self.url).__name__}")
        if not isinstance(self.media_type, str) or "/" not in self.media_type:
            raise ValueError(f"{what}(media_type=...) must look like 'type/subtype', got {self.media_type!r}")
        if self.family and not self.media_type.startswith(self.family + "/"):
            raise ValueError(f"{what} needs a {self.family}/* media type, got {self.media_type!r}")
        digest = sha256_hex(self.data if self.data is not None else (self.url or "").encode("utf-8"))
        object.__setattr__(self, "sha256", digest)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str, *, name: str | None = None, **options: Any) -> Any:
        """From raw bytes with their media type (``"image/png"``, ``"application/pdf"``)."""
        return cls(data=data, media_type=media_type, name=name, options=options)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], media_type: str | None = None, **options: Any) -> Any:
        """Read a file; the media type is guessed from its name unless given."""
        import mimetypes  # here, not at import: it costs ~8 ms of ``import dsrs``

        p = os.fspath(path)
        mt = media_type or mimetypes.guess_type(p)[0]
        if mt is None:
            raise ValueError(f"cannot tell the media type of {os.path.basename(p)!r}: pass media_type=")
        with open(p, "rb") as f:
            data = f.read()
        return cls(data=data, media_type=mt, name=os.path.basename(p), options=options)

    @classmethod
    def from_url(cls, url: str, media_type: str | None = None, **options: Any) -> Any:
        """A URL the provider fetches itself (``https://``), or a ``data:`` URL (decoded to bytes)."""
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        if url.startswith("data:"):
            mt, data = _parse_data_url(url)
            return cls(data=data, media_type=media_type or mt, options=options)
        if not url.startswith(("http://", "https://", "gs://")):
            raise ValueError(f"url must be http(s)://, gs:// or data:, got {url[:40]!r}")
        import mimetypes

        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        mt = media_type or guessed or (f"{cls.family}/*" if cls.family else "application/octet-stream")
        return cls(url=url, media_type=mt, options=options)

    def base64(self) -> str:
        """The bytes, base64-encoded (only for parts built from bytes)."""
        if self.data is None:
            raise ValueError(f"this {type(self).__name__} is a URL, not bytes")
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """A ``data:`` URL for bytes, or the URL itself."""
        if self.data is None:
            assert self.url is not None
            return self.url
        return f"data:{self.media_type};base64,{self.base64()}"

    def to_dict(self) -> dict[str, Any]:
        """What identifies the part (cache keys): kind, media type, content hash, URL, name, options."""
        d: dict[str, Any] = {"type": self.kind, "media_type": self.media_type, "sha256": self.sha256}
        if self.url is not None:
            d["url"] = self.url
        if self.name is not None:
            d["name"] = self.name
        if self.options:
            d["options"] = dict(self.options)
        return d

    def __repr__(self) -> str:
        where = f"url={self.url[:60]!r}" if self.url is not None else f"{len(self.data or b'')} bytes"
        return f"{type(self).__name__}({where}, media_type={self.media_type!r}, sha256={self.sha256[:12]}…)"


class Image(Media):
    """An image (PNG, JPEG, WebP, GIF), from bytes, a path or a URL."""

    __slots__ = ()
    kind: ClassVar[str] = "image"
    family: ClassVar[str] = "image"


class Audio(Media):
    """Audio (WAV, MP3, ...), from bytes, a path or a URL."""

    __slots__ = ()
    kind: ClassVar[str] = "audio"
    family: ClassVar[str] = "audio"


class File(Media):
    """A document (PDF, plain text, ...), from bytes, a path or a URL."""

    __slots__ = ()
    kind: ClassVar[str] = "file"


Part = Union[Text, Image, Audio, File]


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data`` (hashlib is imported on first use: its OpenSSL binding costs
    ~5 ms of ``import dsrs``)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _parse_data_url(url: str) -> tuple[str, bytes]:
    head, sep, payload = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise ValueError("a data: URL must be base64-encoded (data:<type>;base64,<data>)")
    media_type = head[len("data:") : -len(";base64")] or "application/octet-stream"
    try:
        return media_type, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the data: URL's payload is not valid base64") from None


def part_from_dict(d: Mapping[str, Any]) -> Part:
    """An OpenAI-style content part (``text``, ``image_url``, ``input_audio``, ``file``) as a part."""
    kind = d.get("type")
    if kind == "text":
        text = d.get("text")
        if not isinstance(text, str):
            raise TypeError(f"a 'text' content part needs a str 'text', got {type(text).__name__}")
        return Text(text, options=d.get("options") or {})
    if kind == "image_url":
        ref = d.get("image_url")
        url = ref.get("url") if isinstance(ref, Mapping) else ref
        if not isinstance(url, str):
            raise TypeError("an 'image_url' content part needs image_url.url (a str)")
        opts = {"detail": ref["detail"]} if isinstance(ref, Mapping) and "detail" in ref else {}
        image: Image = Image.from_url(url, **opts)
        return image
    if kind == "input_audio":
        ref = d.get("input_audio")
        if not isinstance(ref, Mapping) or not isinstance(ref.get("data"), str):
            raise TypeError("an 'input_audio' content part needs input_audio.data (base64) and .format")
        fmt = str(ref.get("format") or "wav")
        try:
            raw = base64.b64decode(ref["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("input_audio.data is not valid base64") from None
        return Audio(data=raw, media_type="audio/mpeg" if fmt == "mp3" else f"audio/{fmt}")
    if kind == "file":
        ref = d.get("file")
        if not isinstance(ref, Mapping) or not isinstance(ref.get("file_data"), str):
            raise TypeError("a 'file' content part needs file.file_data (a data: URL)")
        mt, raw = _parse_data_url(ref["file_data"])
        return File(data=raw, media_type=mt, name=ref.get("filename"))
    raise ValueError(
        f"unknown content part type {kind!r}; expected 'text', 'image_url', 'input_audio' or 'file' "
        "(or pass dsrs.Image / dsrs.Audio / dsrs.File)"
    )
