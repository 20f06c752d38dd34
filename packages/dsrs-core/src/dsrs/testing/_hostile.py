"""A hostile HTTP server on loopback: raw asyncio sockets, answers that attack the client.

Honest faults (429s, 5xx, resets) are :class:`~dsrs.testing.LoopbackServer`'s job; this one plays a
server that is slow on purpose, sends too much, redirects the key elsewhere, echoes it back and
lies about usage. It writes HTTP/1.1 by hand, one request per connection, so every byte and every
pause is exactly what the scenario says.

The scenario is the first path segment, so a provider is pointed at one with its base URL::

    with HostileServer(interval=0.3) as srv:
        LM("m", base_url=srv.base_url("drip-deltas"), timeout=1)   # -> /drip-deltas/v1/chat/completions

Scenarios (:data:`SCENARIOS`):

* ``drip-headers`` — the status line, one byte every ``interval``;
* ``endless-headers`` — a status line, then one header line that never ends (64 KiB writes);
* ``drip-bytes`` — JSON headers with a large ``Content-Length``, then one space every ``interval``;
* ``drip-heartbeats`` — an SSE stream of ``: ping`` comments, one every ``interval``;
* ``drip-deltas`` — an SSE stream of real chat deltas (``"x"``), one every ``interval``;
* ``endless-line`` — an SSE stream whose ``data:`` line never ends (64 KiB writes, as fast as read);
* ``huge-body`` / ``huge-body-chunked`` — ``huge_bytes`` of JSON-looking body, with a
  ``Content-Length`` or chunked;
* ``gzip-bomb`` — a small gzip body (``Content-Encoding: gzip``) that inflates to ``bomb_bytes``;
* ``redirect-loop`` — 302 to itself; ``redirect-cross-origin`` — 307 to :attr:`other_url`, a second
  listener (another port is another origin) that records what arrives in :attr:`other_origin_requests`;
* ``echo-keys`` / ``echo-keys-500`` — a 401 / 500 whose error body (``message``, ``code``, ``type``,
  ``param``, ``status``) and response headers echo every credential header of the request;
* ``lying-usage-negative`` / ``-huge`` (10^15) / ``-bigint`` (2^70) / ``-deep`` (nesting 400 deep
  inside ``usage``) — a normal answer (SSE when ``"stream": true``) whose usage lies;
* ``ok`` — a normal answer, the control.

Every drip or endless scenario gives up after ``give_up_after`` seconds, so a client that never
stops cannot hang a test run; :attr:`hangups` records each connection the client closed first.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = ["SCENARIOS", "HostileRequest", "HostileServer", "lying_usage"]

SCENARIOS = (
    "drip-headers",
    "endless-headers",
    "drip-bytes",
    "drip-heartbeats",
    "drip-deltas",
    "endless-line",
    "huge-body",
    "huge-body-chunked",
    "gzip-bomb",
    "redirect-loop",
    "redirect-cross-origin",
    "echo-keys",
    "echo-keys-500",
    "lying-usage-negative",
    "lying-usage-huge",
    "lying-usage-bigint",
    "lying-usage-deep",
    "ok",
)

_MIB = 1024 * 1024
_BOMBS: dict[int, bytes] = {}
_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization")


@dataclass
class HostileRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def scenario(self) -> str:
        return self.path.lstrip("/").split("/", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def lying_usage(kind: str) -> dict[str, Any]:
    """The ``usage`` object of a ``lying-usage-<kind>`` answer (OpenAI chat shape)."""
    if kind == "negative":
        return {"prompt_tokens": -5, "completion_tokens": -1_000_000, "total_tokens": -1_000_005}
    if kind == "huge":
        return {"prompt_tokens": 3, "completion_tokens": 10**15, "total_tokens": 10**15 + 3}
    if kind == "bigint":
        return {"prompt_tokens": 3, "completion_tokens": 2**70, "total_tokens": 2**70 + 3}
    if kind == "deep":
        deep: Any = 1
        for _ in range(400):
            deep = [deep]
        return {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "completion_tokens_details": deep}
    raise ValueError(f"lying_usage kind must be negative, huge, bigint or deep, got {kind!r}")


def _dumps(obj: Any) -> bytes:
    # The standard json module writes 2**70 and 400-deep nesting as they are (orjson would refuse).
    return json.dumps(obj, separators=(",", ":")).encode()


# Shapes from the OpenAI API reference, "Create chat completion" (response object and
# "chat.completion.chunk" streaming object): https://platform.openai.com/docs/api-reference/chat
def _completion(model: str, content: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage,
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    obj: dict[str, Any] = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + _dumps(obj) + b"\n\n"


class _ClientGone(Exception):
    pass


class HostileServer:
    """``with HostileServer() as srv: srv.base_url("drip-bytes")`` — see the module doc."""

    def __init__(
        self,
        *,
        interval: float = 0.3,
        give_up_after: float = 20.0,
        huge_bytes: int = 200 * _MIB,
        bomb_bytes: int = 256 * _MIB,
    ) -> None:
        self.interval = interval
        self.give_up_after = give_up_after
        self.huge_bytes = huge_bytes
        self.bomb_bytes = bomb_bytes
        self.requests: list[HostileRequest] = []
        self.other_origin_requests: list[HostileRequest] = []
        self.hangups: list[tuple[str, float]] = []  # (scenario, time.monotonic()) of each client hang-up
        self.port = 0
        self.other_port = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_url(self) -> str:
        """The second listener: another origin for ``redirect-cross-origin``."""
        return f"http://127.0.0.1:{self.other_port}"

    def base_url(self, scenario: str) -> str:
        """The base URL (``.../<scenario>/v1``) to give a provider."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        return f"{self.url}/{scenario}/v1"

    def gzip_bomb(self) -> bytes:
        """The ``gzip-bomb`` body: ``bomb_bytes`` of zeros (whole MiB), gzip-compressed (about 1/1000)."""
        bomb = _BOMBS.get(self.bomb_bytes)
        if bomb is None:
            # One MiB of zeros deflated and fully flushed (a self-contained run of blocks), repeated:
            # ~80 ms for 256 MiB where compressing them all takes ~2 s.
            n, zeros = max(1, self.bomb_bytes // _MIB), bytes(_MIB)
            z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
            block = z.compress(zeros) + z.flush(zlib.Z_FULL_FLUSH)
            final = z.flush()
            crc = 0
            for _ in range(n):
                crc = zlib.crc32(zeros, crc)
            header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name, mtime 0
            trailer = struct.pack("<II", crc, (n * _MIB) & 0xFFFFFFFF)
            bomb = _BOMBS[self.bomb_bytes] = header + block * n + final + trailer
        return bomb

    def start(self) -> HostileServer:
        self._thread = threading.Thread(target=self._run, name="dsrs-hostile-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"hostile server did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        main = await asyncio.start_server(self._handle_main, "127.0.0.1", 0)
        other = await asyncio.start_server(self._handle_other, "127.0.0.1", 0)
        self.port = main.sockets[0].getsockname()[1]
        self.other_port = other.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        main.close()
        other.close()
        for task in list(self._tasks):  # drips still running: the test is over
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- connections -----------------------------------------------------------------------------

    async def _read_request(self, reader: asyncio.StreamReader) -> HostileRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = [*lines[0].split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        return HostileRequest(method, path, headers, body)

    async def _handle_other(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await self._read_request(reader)
        if req is not None:
            self.other_origin_requests.append(req)
            await self._finish(writer, 200, {"content-type": "application/json"}, b'{"other":"origin"}')

    async def _handle_main(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            req = await self._read_request(reader)
            if req is None:
                return
            self.requests.append(req)
            try:
                await self._answer(req, writer)
            except (_ClientGone, ConnectionError):
                self.hangups.append((req.scenario, time.monotonic()))
        except asyncio.CancelledError:
            pass  # stop() while a drip runs; asyncio's connection callback would log a cancelled task
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            raise _ClientGone
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            raise _ClientGone from None

    async def _head(self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str]) -> None:
        reason = {200: "OK", 302: "Found", 307: "Temporary Redirect", 401: "Unauthorized", 500: "Server Error"}
        lines = [f"HTTP/1.1 {status} {reason.get(status, 'Status')}", "connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        await self._write(writer, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def _finish(self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes) -> None:
        await self._head(writer, status, {**headers, "content-length": str(len(body))})
        await self._write(writer, body)

    async def _chunked(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        await self._write(writer, f"{len(data):x}\r\n".encode() + data + b"\r\n")

    async def _answer(self, req: HostileRequest, writer: asyncio.StreamWriter) -> None:
        scenario = req.scenario
        try:
            body = req.json() or {}
        except ValueError:
            body = {}
        model = str(body.get("model", "hostile")) if isinstance(body, dict) else "hostile"
        stream = isinstance(body, dict) and bool(body.get("stream"))
        until = time.monotonic() + self.give_up_after
        sse = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}

        if scenario == "drip-headers":
            for byte in b"HTTP/1.1 200 OK\r\n":
                if time.monotonic() > until:
                    return
                await self._write(writer, bytes([byte]))
                await asyncio.sleep(self.interval)
        elif scenario == "endless-headers":
            await self._write(writer, b"HTTP/1.1 200 OK\r\nx-endless: ")
            piece = b"h" * (64 * 1024)
            while time.monotonic() < until:
                await self._write(writer, piece)
        elif scenario == "drip-bytes":
            await self._head(writer, 200, {"content-type": "application/json", "content-length": str(_MIB)})
            while time.monotonic() < until:
                await self._write(writer, b" ")
                await asyncio.sleep(self.interval)
        elif scenario in ("drip-heartbeats", "drip-deltas"):
            await self._head(writer, 200, sse)
            while time.monotonic() < until:
                if scenario == "drip-heartbeats":
                    await self._chunked(writer, b": ping\n\n")
                else:
                    await self._chunked(writer, _chunk(model, {"content": "x"}))
                await asyncio.sleep(self.interval)
        elif scenario == "endless-line":
            await self._head(writer, 200, sse)
            await self._chunked(writer, b"data: ")
            piece = b"x" * (64 * 1024)
            while time.monotonic() < until:
                await self._chunked(writer, piece)
        elif scenario in ("huge-body", "huge-body-chunked"):
            chunked = scenario == "huge-body-chunked"
            headers = {"content-type": "application/json"}
            headers.update({"transfer-encoding": "chunked"} if chunked else {"content-length": str(self.huge_bytes)})
            await self._head(writer, 200, headers)
            prefix = b'{"id":"chatcmpl-hostile","object":"chat.completion","choices":[{"message":{"content":"'
            sent, piece = 0, b"x" * _MIB
            while sent < self.huge_bytes and time.monotonic() < until:
                data = (prefix + piece)[:_MIB] if sent == 0 else piece[: self.huge_bytes - sent]
                await (self._chunked(writer, data) if chunked else self._write(writer, data))
                sent += len(data)
            if chunked:
                await self._write(writer, b"0\r\n\r\n")
        elif scenario == "gzip-bomb":
            bomb = self.gzip_bomb()
            headers = {"content-type": "text/event-stream" if stream else "application/json"}
            await self._finish(writer, 200, {**headers, "content-encoding": "gzip"}, bomb)
        elif scenario == "redirect-loop":
            await self._finish(writer, 302, {"location": f"{self.url}{req.path}"}, b"")
        elif scenario == "redirect-cross-origin":
            rest = req.path.split("/", 2)[2] if req.path.count("/") >= 2 else ""
            await self._finish(writer, 307, {"location": f"{self.other_url}/{rest}"}, b"")
        elif scenario in ("echo-keys", "echo-keys-500"):
            keys = [req.headers[h] for h in _CREDENTIAL_HEADERS if req.headers.get(h)]
            echoed = " | ".join(keys) or "no key sent"
            error = {
                "message": f"invalid credentials: {echoed}",
                "type": echoed,
                "code": echoed,
                "param": echoed,
                "status": echoed,
            }
            headers = {"content-type": "application/json"}
            headers.update({f"x-echo-{h}": req.headers[h] for h in _CREDENTIAL_HEADERS if req.headers.get(h)})
            await self._finish(writer, 401 if scenario == "echo-keys" else 500, headers, _dumps({"error": error}))
        elif scenario.startswith("lying-usage-"):
            usage = lying_usage(scenario.removeprefix("lying-usage-"))
            await self._answer_normally(writer, model, stream, usage)
        elif scenario == "ok":
            await self._answer_normally(
                writer, model, stream, {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            )
        else:
            await self._finish(
                writer, 404, {"content-type": "application/json"}, b'{"error":{"message":"no scenario"}}'
            )

    async def _answer_normally(
        self, writer: asyncio.StreamWriter, model: str, stream: bool, usage: dict[str, Any]
    ) -> None:
        if not stream:
            await self._finish(
                writer, 200, {"content-type": "application/json"}, _dumps(_completion(model, "ok", usage))
            )
            return
        events = _chunk(model, {"role": "assistant", "content": "ok"})
        events += _chunk(model, {}, "stop") + _chunk(model, {}, usage=usage) + b"data: [DONE]\n\n"
        await self._finish(writer, 200, {"content-type": "text/event-stream"}, events)
