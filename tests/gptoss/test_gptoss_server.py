"""Server lifecycle on each real engine (xllamacpp wheel, llama-server binary): auto-start, reuse,
port conflict, missing parts, crash during start, health timeout, capability check, stop on exit."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsrs
from dsrs_gptoss import server as srv
from dsrs_gptoss.provider import GptOssProvider
from dsrs_gptoss.server import Engine, LlamaServer

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def local_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch, use_engine: Engine, tiny_model: Path) -> str:
    """GPTOSS_BASE_URL on a free local port with nothing there; engine and tiny model via env vars."""
    base = f"http://127.0.0.1:{srv.free_port()}"
    monkeypatch.setenv("GPTOSS_BASE_URL", base)
    monkeypatch.setenv("LLAMA_MODEL_PATH", str(tiny_model))
    return base


def test_auto_start_on_first_call_then_reuse(local_env: str) -> None:
    lm = dsrs.LM("gptoss:tiny", max_tokens=8, seed=1)
    r = lm.call("hello")
    assert r.provider == "gptoss" and r.usage.completion_tokens > 0
    provider = lm.provider()
    assert isinstance(provider, GptOssProvider)
    assert provider.handle is not None and provider.handle.started
    started = provider.handle.server
    assert started is not None and started.base_url == local_env and started.is_running()
    assert r.usage.detail["model_file"] == started.model_path.name
    # A second LM in the same process reuses the same process.
    lm2 = dsrs.LM("gptoss:tiny", max_tokens=4)
    lm2.call("again")
    p2 = lm2.provider()
    assert isinstance(p2, GptOssProvider) and p2.handle is not None
    assert p2.handle.server is started
    # Its output went to the log file, not to a pipe.
    assert started.log_path.is_file() and started.log_path.stat().st_size > 0


def test_reuses_a_server_that_is_already_running(tiny_server: LlamaServer, clean_env: Path) -> None:
    handle = srv.ensure_server(tiny_server.base_url)
    assert not handle.started and handle.base_url == tiny_server.base_url
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=4, auto_start=False)
    assert lm.call("hi").usage.completion_tokens > 0


class _NotLlama(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def occupied_port() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotLlama)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_port_taken_by_something_else_gets_a_free_port(
    local_env: str, occupied_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = f"http://127.0.0.1:{occupied_port}"
    monkeypatch.setenv("GPTOSS_BASE_URL", wanted)
    lm = dsrs.LM("gptoss:tiny", max_tokens=4)
    r = lm.call("hi")
    provider = lm.provider()
    assert isinstance(provider, GptOssProvider) and provider.handle is not None
    assert provider.handle.started and provider.handle.base_url != wanted
    assert r.usage.detail["base_url"] == provider.handle.base_url


def test_missing_binary_is_a_clear_error(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    monkeypatch.setenv("GPTOSS_ENGINE", "llama-server")  # the prebuilt engine is not allowed
    monkeypatch.setenv("GPTOSS_BASE_URL", f"http://127.0.0.1:{srv.free_port()}")
    with pytest.raises(srv.BinaryNotFoundError) as info:
        dsrs.LM("gptoss:gpt-oss-20b", max_tokens=4).call("hi")
    assert isinstance(info.value, dsrs.ProviderUnavailableError)
    assert "dsrs-gptoss install" in str(info.value) and info.value.provider == "gptoss"


def test_missing_model_lists_paths_searched(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, use_engine: Engine
) -> None:
    monkeypatch.setenv("GPTOSS_BASE_URL", f"http://127.0.0.1:{srv.free_port()}")
    with pytest.raises(srv.ModelNotFoundError) as info:
        dsrs.LM("gptoss:gpt-oss-20b", max_tokens=4).call("hi")
    assert "models/gpt-oss" in str(info.value) and ".openagents/models" in str(info.value)


def test_crash_during_start_reports_exit_code_and_log(
    local_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))
    monkeypatch.setenv("LLAMA_MODEL_PATH", str(broken))
    with pytest.raises(srv.ServerStartError) as info:
        dsrs.LM("gptoss:broken", max_tokens=4).call("hi")
    message = str(info.value)
    assert "exited with code" in message and str(broken) in message
    assert info.value.log_tail.strip()


def test_health_timeout_stops_the_process_and_shows_the_log(tiny_model: Path, tmp_path: Path) -> None:
    """A server that never becomes healthy (a stand-in that hangs while "loading") is killed."""
    hung = tmp_path / "hung-llama-server"
    hung.write_text("#!/bin/sh\necho 'loading model tensors...'\nexec sleep 60\n")
    hung.chmod(0o755)
    server = LlamaServer(tiny_model, binary=hung, startup_timeout=1.0, log_path=tmp_path / "s.log")
    with pytest.raises(srv.ServerStartError, match="did not answer /health within 1s") as info:
        server.start()
    assert "loading model tensors" in str(info.value) and "loading model tensors" in info.value.log_tail
    assert not server.is_running()


def test_context_manager_stops_the_server(engine: Engine, tiny_model: Path) -> None:
    with LlamaServer(tiny_model, engine=engine) as server:
        pid, port = server.pid, server.port
        assert pid is not None and _alive(pid) and _port_open(port)
        assert server.started_seconds is not None and server.started_seconds < 30
    assert not _alive(pid)
    deadline = time.monotonic() + 5
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _port_open(port)


def test_auto_started_server_is_stopped_when_the_process_exits(local_env: str) -> None:
    code = (
        "import dsrs\n"
        "lm = dsrs.LM('gptoss:tiny', max_tokens=4)\n"
        "lm.call('hi')\n"
        "h = lm.provider().handle\n"
        "print(h.server.pid, h.server.port, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    pid, port = (int(x) for x in out.stdout.split())
    deadline = time.monotonic() + 10
    while (_alive(pid) or _port_open(port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid) and not _port_open(port)


def test_a_server_that_goes_away_is_started_again(local_env: str) -> None:
    lm = dsrs.LM("gptoss:tiny", max_tokens=4)
    lm.call("one")
    provider = lm.provider()
    assert isinstance(provider, GptOssProvider) and provider.handle is not None
    first = provider.handle.server
    assert first is not None
    first.stop()  # the server dies (crash, kill, machine sleep)
    lm.call("two")  # the next call notices and auto-starts a new one
    assert provider.handle is not None and provider.handle.server is not None
    assert provider.handle.server is not first and provider.handle.server.is_running()


def test_concurrent_first_calls_start_one_server(local_env: str) -> None:
    import asyncio

    lms = [dsrs.LM("gptoss:tiny", max_tokens=3) for _ in range(4)]

    async def run() -> list[dsrs.LMResponse]:
        return list(await asyncio.gather(*(lm.acall("hi") for lm in lms)))

    responses = asyncio.run(run())
    assert all(r.usage.completion_tokens > 0 for r in responses)
    servers = set()
    for lm in lms:
        p = lm.provider()
        assert isinstance(p, GptOssProvider) and p.handle is not None
        servers.add(id(p.handle.server))
    assert len(servers) == 1


# --- engine choice and the prebuilt engine's own checks ---------------------------------------------


def test_without_any_binary_the_prebuilt_engine_is_used(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    found = srv.find_engine()
    assert found.kind == "xllamacpp" and found.argv[1:] == ("-m", "dsrs_gptoss.engine")
    assert found.version.startswith("20")


def test_a_binary_on_path_comes_before_the_prebuilt_engine(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "llama-server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert srv.find_engine() == Engine.binary(fake)
    monkeypatch.setenv("GPTOSS_ENGINE", "xllamacpp")
    assert srv.find_engine().kind == "xllamacpp"
    monkeypatch.setenv("GPTOSS_ENGINE", "vulkan")
    with pytest.raises(srv.BinaryNotFoundError, match="GPTOSS_ENGINE=vulkan is not one of"):
        srv.find_engine()


def test_prebuilt_engine_check_passes_and_names_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dsrs_gptoss.engine", "--model", "-", "--port", "1", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.startswith("xllamacpp 20") and out.stdout.strip().endswith(": ok")


def test_prebuilt_engine_rejects_an_unknown_flag_with_the_log(tiny_model: Path, tmp_path: Path) -> None:
    server = LlamaServer(
        tiny_model, engine=Engine.prebuilt(), extra_args=["--mlock-everything"], log_path=tmp_path / "e.log"
    )
    with pytest.raises(srv.ServerStartError, match="exited with code 2") as info:
        server.start()
    assert "unrecognized arguments: --mlock-everything" in info.value.log_tail


def test_prebuilt_engine_exits_when_its_parent_is_killed(tiny_model: Path, tmp_path: Path) -> None:
    """A caller killed with SIGKILL runs no atexit hook; the engine notices and stops by itself."""
    code = (
        "import os, sys\n"
        "from dsrs_gptoss.server import Engine, LlamaServer\n"
        f"s = LlamaServer({str(tiny_model)!r}, engine=Engine.prebuilt(), log_path={str(tmp_path / 'p.log')!r})\n"
        "s.start()\n"
        "print(s.pid, s.port, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == -9
    pid, port = (int(x) for x in out.stdout.split())
    deadline = time.monotonic() + 10
    while (_alive(pid) or _port_open(port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid) and not _port_open(port)


def test_version_outside_the_supported_range_is_refused() -> None:
    from dsrs_gptoss import engine

    assert engine.check_version("2026.10.11549") == "2026.10.11549"
    with pytest.raises(engine.EngineCheckError, match=r"xllamacpp 0\.2\.14 is outside the supported range >=2026"):
        engine.check_version("0.2.14")


_IGNORES_GRAMMARS = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self._send(200, {"status": "ok"})
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(200, {"prompt": "x"} if self.path == "/apply-template" else {"content": "free text"})
    def log_message(self, *a):
        pass
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_an_engine_that_ignores_grammars_is_refused_at_start(tiny_model: Path, tmp_path: Path) -> None:
    """A server that answers /health but ignores ``grammar`` (an old or foreign build) fails at start."""
    script = tmp_path / "stand_in.py"
    script.write_text(_IGNORES_GRAMMARS)
    engine = Engine("llama-server", (sys.executable, str(script)))
    server = LlamaServer(tiny_model, engine=engine, log_path=tmp_path / "s.log")
    with pytest.raises(srv.EngineCheckFailed, match="GBNF grammars are not applied: 200"):
        server.start()
    assert not server.is_running()


def test_started_servers_record_what_they_can_do(tiny_server: LlamaServer) -> None:
    seen = srv.capabilities_of(tiny_server.base_url)
    assert seen is not None and seen.grammar and seen.jinja
    assert seen == tiny_server.capabilities


def test_auto_started_server_has_slots_and_serves_them_concurrently(local_env: str) -> None:
    import asyncio
    import json
    import urllib.request

    lm = dsrs.LM("gptoss:tiny", max_tokens=24, temperature=1.0, ignore_eos=True)
    lm.call("start")
    provider = lm.provider()
    assert isinstance(provider, GptOssProvider) and provider.handle is not None
    started = provider.handle.server
    assert started is not None and started.parallel == srv.default_parallel(4096)
    with urllib.request.urlopen(started.base_url + "/props", timeout=10) as resp:
        props = json.loads(resp.read())
    assert props["total_slots"] == started.parallel

    async def run() -> list[dsrs.LMResponse]:
        return list(await asyncio.gather(*(lm.acall(f"hi {i}", seed=i) for i in range(started.parallel))))

    responses = asyncio.run(run())
    assert all(r.usage.completion_tokens == 24 for r in responses)


class _NeedsAuth(_NotLlama):
    def do_GET(self) -> None:
        self.send_response(401)
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": {"message": "invalid api key", "type": "authentication_error"}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_server_behind_auth_is_used_not_replaced(local_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NeedsAuth)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        lm = dsrs.LM("gptoss:tiny", base_url=base, max_tokens=4)
        with pytest.raises(dsrs.LMError) as info:
            lm.call("hi")
        assert info.value.status == 401
        provider = lm.provider()
        assert isinstance(provider, GptOssProvider) and provider.handle is not None
        assert not provider.handle.started and provider.handle.base_url == base
    finally:
        httpd.shutdown()
        httpd.server_close()
