"""A fast loopback server speaking the OpenAI Chat Completions wire, in its own process.

Benchmarks need a server that is (a) much faster than any client under test and (b) not sharing the
client's GIL, so it runs as a separate Python process with a bare ``asyncio.Protocol`` HTTP/1.1
implementation (keep-alive, pipelining, ``Content-Length`` bodies). Standard library only, so any
venv can run it; uses ``uvloop`` when importable.

API (for every script under ``benchmarks/``)::

    from _server import BenchServer   # benchmarks/ is on sys.path when a script there runs

    with BenchServer(words=8) as srv:   # starts the subprocess, waits until it listens
        srv.url        # "http://127.0.0.1:PORT" (no path; base_url for LM / SDKs)
        srv.chat_url   # "http://127.0.0.1:PORT/v1/chat/completions"
        srv.requests() # how many requests the server has answered so far (GET /__stats)

``BenchServer(words=8, stream_chunks=None, delay_ms=0.0, port=0, python=sys.executable)``:

* ``words`` — the answer text has this many words (``"w0 w1 ..."``); usage counts words too.
* ``stream_chunks`` — SSE chunks for ``"stream": true`` requests (default: one per word), then a
  finish chunk, a usage chunk (when ``stream_options.include_usage``) and ``data: [DONE]``.
* ``delay_ms`` — sleep this long before every answer (models a slow server without using CPU).

Routes: ``POST */chat/completions`` (non-stream: one fixed JSON body built once at start-up, so the
server spends no time on it; ``"model"`` echoes nothing), ``GET */models``, ``GET /__stats``. The
request body is only parsed when it mentions ``"stream"``. Run it by hand with
``python benchmarks/_server.py --port 8123`` (it prints ``LISTENING <port>`` when ready).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from types import TracebackType

__all__ = ["BenchServer", "chat_body", "serve"]

_MODEL = "bench-model"


def chat_body(words: int) -> bytes:
    """The fixed non-stream answer: OpenAI chat.completion shape with usage."""
    text = " ".join(f"w{i}" for i in range(words))
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": _MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words},
        },
        separators=(",", ":"),
    ).encode()


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: keep-alive\r\n\r\n"
        + body
    )


def _sse_response(words: int, chunks: int | None, include_usage: bool) -> bytes:
    pieces = [f"w{i}" if i == 0 else f" w{i}" for i in range(words)]
    n = max(1, min(chunks if chunks is not None else len(pieces), len(pieces) or 1))
    size = -(-len(pieces) // n) if pieces else 1
    groups = ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)] or [""]
    events: list[bytes] = []

    def event(obj: object) -> None:
        events.append(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")

    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": _MODEL}
    for g in groups:
        event({**base, "choices": [{"index": 0, "delta": {"content": g}, "finish_reason": None}]})
    event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        event(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words},
            }
        )
    events.append(b"data: [DONE]\n\n")
    out = b""
    for e in events:
        out += f"{len(e):x}\r\n".encode() + e + b"\r\n"
    out += b"0\r\n\r\n"
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
        b"connection: keep-alive\r\n\r\n" + out
    )


class _Stats:
    answered = 0


class _Http(asyncio.Protocol):
    """HTTP/1.1 keep-alive with Content-Length bodies; answers are pre-built bytes."""

    def __init__(self, answers: dict[str, bytes], delay: float, stats: _Stats) -> None:
        self._answers = answers
        self._delay = delay
        self._stats = stats
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            length = 0
            lower = head.lower()
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                length = int(head[i + 17 : j if j >= 0 else len(head)])
            total = end + 4 + length
            if len(buf) < total:
                break
            body = buf[end + 4 : total]
            buf = buf[total:]
            self._answer(head, body)
        self._buf = buf

    def _answer(self, head: bytes, body: bytes) -> None:
        line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        parts = line.split(b" ")
        method, path = parts[0], parts[1] if len(parts) > 1 else b"/"
        self._stats.answered += 1
        if method == b"POST" and path.rstrip(b"/").endswith(b"/chat/completions"):
            reply = self._answers["chat"]
            if b'"stream"' in body:
                try:
                    req = json.loads(body)
                except ValueError:
                    req = {}
                if req.get("stream"):
                    usage = bool((req.get("stream_options") or {}).get("include_usage"))
                    reply = self._answers["sse_usage" if usage else "sse"]
        elif method == b"GET" and path.rstrip(b"/").endswith(b"/models"):
            reply = self._answers["models"]
        elif method == b"GET" and path == b"/__stats":
            reply = _response("200 OK", json.dumps({"answered": self._stats.answered}).encode())
        else:
            reply = self._answers["404"]
        transport = self._transport
        if transport is None:
            return
        if self._delay:
            asyncio.get_running_loop().call_later(self._delay, self._write_later, transport, reply)
        else:
            transport.write(reply)

    @staticmethod
    def _write_later(transport: asyncio.Transport, reply: bytes) -> None:
        if not transport.is_closing():
            transport.write(reply)


async def serve(port: int, words: int, stream_chunks: int | None, delay_ms: float) -> None:
    """Serve until SIGTERM/SIGINT; prints ``LISTENING <port>`` once bound."""
    answers = {
        "chat": _response("200 OK", chat_body(words)),
        "sse": _sse_response(words, stream_chunks, include_usage=False),
        "sse_usage": _sse_response(words, stream_chunks, include_usage=True),
        "models": _response(
            "200 OK", json.dumps({"object": "list", "data": [{"id": _MODEL, "object": "model"}]}).encode()
        ),
        "404": _response("404 Not Found", b'{"error":{"message":"no such route","type":"invalid_request_error"}}'),
    }
    stats = _Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Http(answers, delay_ms / 1000.0, stats), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"LISTENING {bound}", flush=True)
    async with server:
        await stop.wait()


class BenchServer:
    """The server in a child process; a context manager. See the module docstring."""

    def __init__(
        self,
        *,
        words: int = 8,
        stream_chunks: int | None = None,
        delay_ms: float = 0.0,
        port: int = 0,
        python: str = sys.executable,
    ) -> None:
        self._args = [
            python,
            os.path.abspath(__file__),
            "--port",
            str(port),
            "--words",
            str(words),
            "--delay-ms",
            str(delay_ms),
        ]
        if stream_chunks is not None:
            self._args += ["--stream-chunks", str(stream_chunks)]
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_url(self) -> str:
        return self.url + "/v1/chat/completions"

    def start(self) -> BenchServer:
        self._proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"bench server failed to start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def requests(self) -> int:
        with urllib.request.urlopen(self.url + "/__stats", timeout=5) as resp:
            return int(json.loads(resp.read())["answered"])

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="fast loopback OpenAI-wire server for benchmarks")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--words", type=int, default=8)
    parser.add_argument("--stream-chunks", type=int, default=None)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop  # type: ignore[import-not-found]

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(args.port, args.words, args.stream_chunks, args.delay_ms))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
