"""Content decoding and the body bound, on both transports, against a real loopback server.

Both transports read raw bytes and decode gzip/deflate themselves (so the bound counts decoded
bytes): compressed answers read the same as plain ones, ``max_body_bytes`` is exact and applies to
error bodies too, and an encoding dsrs did not ask for is a typed error.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsrs
from dsrs.testing import LoopbackServer, Reply, openai_chat_reply, openai_wire_server
from dsrs.transport import (
    DEFAULT_MAX_BODY_BYTES,
    BodyDecodeError,
    BodyTooLargeError,
    HttpRequest,
    get_transport,
    make_transport,
    set_transport_factory,
)
from dsrs.transport._decoding import PIECE, BodyDecoder


@pytest.fixture(params=["aiohttp", "httpx"])
def transport_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    set_transport_factory(lambda: make_transport(name))
    yield name
    set_transport_factory(None)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with openai_wire_server() as srv:
        yield srv


def _compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # "deflate" sent without its zlib header
    return raw.compress(body) + raw.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_read_like_plain_ones(
    transport_name: str, server: LoopbackServer, encoding: str
) -> None:
    def compressed(req: object) -> Reply:
        plain = openai_chat_reply(req)  # type: ignore[arg-type]
        wire = "deflate" if encoding == "raw-deflate" else encoding
        data = b"".join(c if isinstance(c, bytes) else c.encode() for c in plain.chunks) if plain.chunks else None
        body = _compress(data if data is not None else plain.body_bytes(), encoding)
        headers = {**plain.headers, "content-encoding": wire}
        if plain.chunks is not None:  # a compressed stream, sent in small pieces
            return Reply(200, headers=headers, chunks=[body[i : i + 7] for i in range(0, len(body), 7)])
        return Reply(200, body, headers=headers)

    server.handler = compressed
    lm = dsrs.LM("m", base_url=server.url)
    assert (await lm.acall("the quick brown fox")).text == "the quick brown fox"
    assert [d async for d in lm.astream("one two three")] == ["one", " two", " three"]
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"  # only what we decode


@pytest.mark.parametrize("chunked", [False, True])
async def test_max_body_bytes_is_exact(transport_name: str, server: LoopbackServer, chunked: bool) -> None:
    body = b"x" * 1000
    url = server.url + "/anything"
    for _ in range(2):
        server.push(Reply(200, chunks=[body[:400], body[400:]]) if chunked else Reply(200, body))
    resp = await get_transport().send(HttpRequest("GET", url, {}, None, 5.0, max_body_bytes=1000))
    assert resp.content == body
    with pytest.raises(BodyTooLargeError) as info:
        await get_transport().send(HttpRequest("GET", url, {}, None, 5.0, max_body_bytes=999))
    assert (info.value.bound, info.value.limit) == ("max_body_bytes", 999)
    assert str(info.value) == "response body exceeds max_body_bytes=999 bytes"


async def test_max_body_bytes_counts_decoded_bytes(transport_name: str, server: LoopbackServer) -> None:
    server.push(Reply(200, gzip.compress(b"y" * 5000), headers={"content-encoding": "gzip"}))
    with pytest.raises(BodyTooLargeError):
        await get_transport().send(HttpRequest("GET", server.url + "/x", {}, None, 5.0, max_body_bytes=4999))


async def test_error_bodies_are_bounded_too(transport_name: str, server: LoopbackServer) -> None:
    server.push(Reply(500, b"e" * 2000))
    async with get_transport().stream(HttpRequest("GET", server.url + "/x", {}, None, 5.0, max_body_bytes=100)) as r:
        assert r.status == 500
        with pytest.raises(BodyTooLargeError):
            await r.aread()


async def test_an_encoding_not_asked_for_is_a_parse_error(transport_name: str, server: LoopbackServer) -> None:
    server.push(Reply(200, b"\x8b\x00\x80", headers={"content-encoding": "br"}))
    with pytest.raises(BodyDecodeError, match="unsupported content-encoding 'br'"):
        await get_transport().send(HttpRequest("GET", server.url + "/x", {}, None, 5.0))
    server.push(Reply(200, b"\x1f\x8bnot gzip at all", headers={"content-encoding": "gzip"}))
    with pytest.raises(dsrs.ResponseParseError, match="corrupt gzip body"):
        await dsrs.LM("m", base_url=server.url).acall("hi")


def test_default_bound() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 32 * 1024 * 1024
    assert HttpRequest("GET", "http://127.0.0.1/").max_body_bytes == DEFAULT_MAX_BODY_BYTES


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=3000),
    st.sampled_from(["gzip", "deflate", "raw-deflate"]),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_decoder_gives_the_body_however_it_is_split(body: bytes, encoding: str, cuts: list[int]) -> None:
    data = _compress(body, encoding)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    decoder = BodyDecoder("deflate" if encoding == "raw-deflate" else encoding, len(body))
    out = b"".join(piece for chunk in chunks for piece in decoder.decode(chunk)) + b"".join(decoder.finish())
    assert out == body


def test_a_bomb_is_inflated_in_bounded_pieces_and_stops_at_the_bound() -> None:
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KB
    decoder = BodyDecoder("gzip", 10 * 1024 * 1024)
    pieces: list[int] = []
    with pytest.raises(BodyTooLargeError):
        pieces.extend(len(piece) for piece in decoder.decode(bomb))
    assert max(pieces) <= PIECE
    assert decoder.decoded_bytes <= 10 * 1024 * 1024 + PIECE


async def test_a_declared_length_past_the_bound_is_refused_before_the_body(
    transport_name: str, server: LoopbackServer
) -> None:
    """A plain body whose content-length exceeds max_body_bytes is refused from its headers: the
    server here sends only 10 of the 2,000 bytes it declares, so reading would fail otherwise."""
    url = server.url + "/x"
    server.push(Reply(200, b"x" * 2000, truncate_to=10))
    with pytest.raises(BodyTooLargeError):
        await get_transport().send(HttpRequest("GET", url, {}, None, 5.0, max_body_bytes=1000))
    server.push(Reply(500, b"e" * 2000, truncate_to=10))
    async with get_transport().stream(HttpRequest("GET", url, {}, None, 5.0, max_body_bytes=1000)) as r:
        with pytest.raises(BodyTooLargeError):
            await r.aread()
