"""dsrs-openai streaming benchmark: time to first delta and total time, dsrs vs raw httpx SSE.

Usage::

    .venv/bin/python benchmarks/bench_openai_stream.py            # full run (~1 minute)
    .venv/bin/python benchmarks/bench_openai_stream.py --quick    # short run

The server is ``_server.BenchServer`` (a separate process, OpenAI chat wire, SSE with one chunk per
word, ``stream_options.include_usage`` honoured). Clients alternate block by block (a fresh event
loop per block, its first stream — connection set-up — not measured), so drift hits them alike:

* **raw httpx** — ``httpx.AsyncClient.stream("POST", ...)`` with a pre-encoded body, ``aiter_raw()``,
  events split on blank lines, ``json.loads`` of each ``data:`` payload (no usage bookkeeping, no
  typed errors — the least a hand-written client does);
* **dsrs (httpx)** — ``LM("openai:gpt-4o-mini", base_url=...).astream(...)`` on dsrs's httpx
  transport: the whole path (request build, SSE decoder, chat-stream decoder, usage, cost hook);
* **raw aiohttp** — the same lean client on aiohttp (``resp.content.iter_any()``);
* **dsrs (aiohttp)** — the same on the aiohttp transport (dsrs's default when aiohttp is installed).

Reported: medians of time to first delta (TTFD) and of total time per stream, the ratios dsrs/raw
on the same transport, and each client against raw httpx (target <= 1.05).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _server import BenchServer

import dsrs
from dsrs.transport import get_transport, make_transport, set_transport_factory

KEY = "sk-bench-0123456789"


async def raw_httpx(client: httpx.AsyncClient, url: str, body: dict[str, object]) -> tuple[float, float, str]:
    """A lean hand-written SSE client: raw bytes, split on blank lines, ``json.loads`` per event."""
    t0 = time.perf_counter()
    first = 0.0
    parts: list[str] = []
    payload = json.dumps(body).encode()
    headers = {"authorization": f"Bearer {KEY}", "accept": "text/event-stream", "content-type": "application/json"}
    buf = b""
    async with client.stream("POST", url, content=payload, headers=headers) as resp:
        async for raw in resp.aiter_raw():
            buf += raw
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                if not ev.startswith(b"data: "):
                    continue
                data = ev[6:]
                if data == b"[DONE]":
                    break
                obj = json.loads(data)
                for choice in obj.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        if not parts:
                            first = time.perf_counter() - t0
                        parts.append(piece)
    return first, time.perf_counter() - t0, "".join(parts)


def _events(buf: bytes, parts: list[str], t0: float, first: float) -> tuple[bytes, float]:
    *events, rest = buf.split(b"\n\n")
    for ev in events:
        if not ev.startswith(b"data: ") or ev[6:] == b"[DONE]":
            continue
        for choice in json.loads(ev[6:]).get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                if not parts:
                    first = time.perf_counter() - t0
                parts.append(piece)
    return rest, first


async def raw_aiohttp_block(url: str, words: int, n: int) -> list[tuple[float, float]]:
    """The same lean client on aiohttp (``iter_any()``), the baseline for dsrs's default transport."""
    import aiohttp

    out = []
    payload = json.dumps(_body(words)).encode()
    headers = {"authorization": f"Bearer {KEY}", "accept": "text/event-stream", "content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for i in range(n + 1):
            t0 = time.perf_counter()
            first = 0.0
            parts: list[str] = []
            buf = b""
            async with session.post(url + "/v1/chat/completions", data=payload, headers=headers) as resp:
                async for raw in resp.content.iter_any():
                    buf, first = _events(buf + raw, parts, t0, first)
            total = time.perf_counter() - t0
            assert "".join(parts) == _expected(words)
            if i:
                out.append((first, total))
    return out


async def via_dsrs(lm: dsrs.LM, prompt: str) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    first = 0.0
    parts: list[str] = []
    stream = lm.astream(prompt)
    async for delta in stream:
        if not parts:
            first = time.perf_counter() - t0
        parts.append(delta)
    assert stream.response is not None and stream.response.usage.total_tokens > 0
    return first, time.perf_counter() - t0, "".join(parts)


def _body(words: int) -> dict[str, object]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "go"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def raw_block(url: str, words: int, n: int) -> list[tuple[float, float]]:
    out = []
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(n + 1):  # the first stream of a block opens the connection: not measured
            first, total, text = await raw_httpx(client, url + "/v1/chat/completions", _body(words))
            assert text == _expected(words)
            if i:
                out.append((first, total))
    return out


async def dsrs_block(lm: dsrs.LM, words: int, n: int) -> list[tuple[float, float]]:
    out = []
    for i in range(n + 1):
        first, total, text = await via_dsrs(lm, "go")
        assert text == _expected(words)
        if i:
            out.append((first, total))
    await get_transport().aclose()
    return out


def _expected(words: int) -> str:
    return " ".join(f"w{i}" for i in range(words))


def measure(url: str, words: int, blocks: int, per_block: int) -> dict[str, tuple[float, float]]:
    """Clients alternate block by block (a fresh event loop each), medians over every stream."""
    lm = dsrs.LM("openai:gpt-4o-mini", base_url=url, api_key=KEY)
    results: dict[str, list[tuple[float, float]]] = {
        "raw httpx": [],
        "dsrs (httpx)": [],
        "raw aiohttp": [],
        "dsrs (aiohttp)": [],
    }
    for b in range(blocks):
        names = list(results) if b % 2 == 0 else list(reversed(results))
        for name in names:
            if name == "raw httpx":
                results[name] += asyncio.run(raw_block(url, words, per_block))
                continue
            if name == "raw aiohttp":
                results[name] += asyncio.run(raw_aiohttp_block(url, words, per_block))
                continue
            kind = "httpx" if "httpx" in name else "aiohttp"
            set_transport_factory(lambda kind=kind: make_transport(kind))  # type: ignore[misc]
            try:
                results[name] += asyncio.run(dsrs_block(lm, words, per_block))
            finally:
                set_transport_factory(None)
    return {k: (statistics.median(x for x, _ in v), statistics.median(y for _, y in v)) for k, v in results.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    blocks, per_block = (6, 10) if args.quick else (20, 25)
    print(f"dsrs-openai streaming, {blocks * per_block} streams per client (median), Python {sys.version.split()[0]}")
    print(
        f"{'words':>5} {'client':<15} {'TTFD ms':>8} {'total ms':>9} {'TTFD ratio':>10} {'total ratio':>11}  (ratio: dsrs / raw on the same transport)"
    )
    for words in (20, 200):
        with BenchServer(words=words) as srv:
            res = measure(srv.url, words, blocks, per_block)
        vs_first, vs_total = res["raw httpx"]
        for name, (first, total) in res.items():
            base_first, base_total = res["raw aiohttp" if "aiohttp" in name else "raw httpx"]
            print(
                f"{words:>5} {name:<15} {first * 1000:>8.3f} {total * 1000:>9.3f} {first / base_first:>10.3f} "
                f"{total / base_total:>11.3f}  vs raw httpx: {first / vs_first:.3f} / {total / vs_total:.3f}"
            )


if __name__ == "__main__":
    main()
