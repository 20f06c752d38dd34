"""gptoss pieces that need no llama-server: discovery, request bodies, cost, probe, CLI parsing."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import dsrs
from dsrs_gptoss import cli, install, server
from dsrs_gptoss.provider import DEFAULT_MAX_TOKENS, GptOssProvider


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _model(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


def test_model_strings_resolve_to_gptoss() -> None:
    for model in ("gptoss:gpt-oss-20b", "gpt-oss:gpt-oss-20b", "llamacpp:smollm2", "gpt-oss/gpt-oss-120b"):
        lm = dsrs.LM(model)
        assert lm.provider_name == "gptoss", model
    assert dsrs.LM("gpt-oss:gpt-oss-20b").resolved.model == "gpt-oss-20b"


def test_binary_not_found_names_the_install_command(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    with pytest.raises(server.BinaryNotFoundError) as info:
        server.find_binary()
    assert "dsrs-gptoss install" in str(info.value)
    monkeypatch.setenv("LLAMA_SERVER_BIN", str(clean_env / "nope"))
    with pytest.raises(server.BinaryNotFoundError, match="LLAMA_SERVER_BIN"):
        server.find_binary()


def test_binary_search_order(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _exe(clean_env / "bin" / "llama-server")
    monkeypatch.setenv("PATH", str(on_path.parent))
    cached = _exe(install.llama_cpp_dir() / "bin" / "llama-server")
    (cached.parent / "build.json").write_text("{}")
    assert server.find_binary() == on_path
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    assert server.find_binary() == cached
    explicit = _exe(clean_env / "custom" / "my-llama-server")
    monkeypatch.setenv("LLAMA_SERVER_BIN", str(explicit))
    assert server.find_binary() == explicit


def test_model_not_found_lists_the_paths_searched(clean_env: Path) -> None:
    with pytest.raises(server.ModelNotFoundError) as info:
        server.find_model("gpt-oss-20b")
    message = str(info.value)
    for folder in server.model_search_dirs():
        assert str(folder) in message
    assert "LLAMA_MODEL_PATH" in message and "dsrs-gptoss install" in message
    assert len(info.value.searched) == 4


def test_model_discovery_prefers_the_requested_model(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["HOME"])
    small = _model(install.models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf")
    big = _model(home / "models" / "gpt-oss" / "gpt-oss-20b-mxfp4.gguf")
    other = _model(home / ".openagents" / "models" / "gpt-oss-120b-mxfp4.gguf")
    assert server.find_model("gpt-oss-20b") == big
    assert server.find_model("gpt-oss-120b") == other
    assert server.find_model("20b") == big
    assert server.find_model("smollm2-135m") == small
    assert server.find_model("") == big  # first dir first
    monkeypatch.setenv("LLAMA_MODEL_PATH", str(small))
    assert server.find_model("gpt-oss-20b") == small
    monkeypatch.setenv("LLAMA_MODEL_PATH", str(clean_env / "missing.gguf"))
    with pytest.raises(server.ModelNotFoundError, match="LLAMA_MODEL_PATH"):
        server.find_model("x")


def test_is_local() -> None:
    assert server.is_local("http://localhost:8000")
    assert server.is_local("http://127.0.0.1:1")
    assert server.is_local("http://[::1]:8000")
    assert not server.is_local("http://10.1.2.3:8000")
    assert not server.is_local("https://llama.example.com")


def _provider(**options: Any) -> GptOssProvider:
    lm = dsrs.LM("gptoss:gpt-oss-20b", base_url="http://127.0.0.1:8000", **options)
    p = lm.provider()
    assert isinstance(p, GptOssProvider)
    return p


def test_body_always_has_max_tokens_and_only_set_parameters() -> None:
    lm = dsrs.LM("gptoss:gpt-oss-20b", base_url="http://127.0.0.1:8000", auto_start=False, num_ctx=8192, top_k=5)
    p = lm.provider()
    assert isinstance(p, GptOssProvider)
    body = p.build_body(lm.build_request("hi"))
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["top_k"] == 5
    for absent in ("temperature", "seed", "stop", "auto_start", "num_ctx", "response_format", "grammar"):
        assert absent not in body
    lm2 = lm.with_temperature(0.3).with_seed(7).with_stop("END").with_max_tokens(64)
    body2 = p.build_body(lm2.build_request("hi"))
    assert (body2["temperature"], body2["seed"], body2["stop"], body2["max_tokens"]) == (0.3, 7, ["END"], 64)
    assert p.ctx_size == 8192


def test_structured_output_json_schema_or_grammar() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    rf = dsrs.ResponseFormat(name="reply", schema=schema)
    lm = dsrs.LM("gptoss:x", base_url="http://127.0.0.1:8000")
    p = _provider()
    body = p.build_body(lm.build_request("hi", response_format=rf))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    assert "grammar" not in body
    forced = p.build_body(lm.build_request("hi", response_format=rf, structured="grammar"))
    assert "response_format" not in forced and forced["grammar"].startswith("root ::=")
    email = {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}, "required": ["to"]}
    auto = p.build_body(lm.build_request("hi", response_format=dsrs.ResponseFormat(schema=email)))
    assert "grammar" in auto and "response_format" not in auto


def test_unsupported_schema_in_grammar_mode_is_invalid_request() -> None:
    lm = dsrs.LM("gptoss:x", base_url="http://127.0.0.1:8000")
    rf = dsrs.ResponseFormat(schema={"type": "string", "pattern": "^(?!a)b$"})
    with pytest.raises(dsrs.InvalidRequestError, match="lookahead"):
        _provider().build_body(lm.build_request("hi", response_format=rf, structured="grammar"))


def test_bad_structured_option() -> None:
    with pytest.raises(ValueError, match="structured"):
        _provider(structured="regex")


def test_cost_is_zero_and_known() -> None:
    from dsrs.plugins import hooks

    cost = hooks().cost("gptoss:gpt-oss-20b", dsrs.LmUsage.from_tokens(10, 20))
    assert cost is not None and cost.msats == 0 and cost.usd == 0.0
    assert hooks().cost("someone-else:model", dsrs.LmUsage.from_tokens(10, 20)) is None or True


def test_probe_not_configured_on_a_bare_machine(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    monkeypatch.setenv("GPTOSS_BASE_URL", f"http://127.0.0.1:{server.free_port()}")
    spec = next(s for s in dsrs.providers() if s.name == "gptoss")
    monkeypatch.delenv("GPTOSS_BASE_URL")
    result = asyncio.run(GptOssProvider.probe(spec, 1.0))
    assert result.configured is False and "dsrs-gptoss install" in result.detail


def test_probe_configured_when_binary_and_model_are_local(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_exe(clean_env / "bin" / "llama-server").parent))
    _model(install.models_dir() / "m.gguf")
    monkeypatch.setenv("GPTOSS_BASE_URL", f"http://127.0.0.1:{server.free_port()}")
    spec = next(s for s in dsrs.providers() if s.name == "gptoss")
    result = asyncio.run(GptOssProvider.probe(spec, 1.0))
    assert result.configured is True and result.reachable is None
    assert "auto-starts" in result.detail


def test_probe_configured_with_only_a_model_thanks_to_the_prebuilt_engine(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    _model(install.models_dir() / "m.gguf")
    monkeypatch.setenv("GPTOSS_BASE_URL", f"http://127.0.0.1:{server.free_port()}")
    spec = next(s for s in dsrs.providers() if s.name == "gptoss")
    result = asyncio.run(GptOssProvider.probe(spec, 1.0))
    assert result.configured is True and result.reachable is None
    assert "auto-starts" in result.detail and "xllamacpp" in result.detail


def test_probe_remote_url_unreachable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    monkeypatch.setenv("GPTOSS_BASE_URL", "http://127.0.0.1:9")
    spec = next(s for s in dsrs.providers() if s.name == "gptoss")
    result = asyncio.run(GptOssProvider.probe(spec, 1.0))
    assert result.configured is True and result.reachable is False


def test_no_auto_start_for_remote_urls(clean_env: Path) -> None:
    with pytest.raises(server.LlamaServerError, match="not a local URL"):
        server.ensure_server("http://192.0.2.1:1", auto_start=True, startup_timeout=1)


def test_install_summary_line(tmp_path: Path) -> None:
    model = _model(tmp_path / "m.gguf")
    line = install.InstallResult(server=tmp_path / "llama-server", model=model, seconds=1.25).summary()
    assert line.startswith("dsrs-gptoss: llama-server ") and str(model) in line and "[1.2s]" in line
    assert "\n" not in line


def test_cli_where_reports_missing_parts(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty-bin"))
    assert cli.main(["where"]) == 1  # no model
    out = capsys.readouterr().out
    assert "engine: xllamacpp 20" in out and "dsrs-gptoss install" in out and "cache:" in out
    monkeypatch.setenv("GPTOSS_ENGINE", "llama-server")
    assert cli.main(["where"]) == 1
    out = capsys.readouterr().out
    assert "engine: llama-server not found" in out and "--from-source" in out


def test_install_pins_are_consistent() -> None:
    assert len(install.DEFAULT_MODEL_SHA256) == 64
    int(install.DEFAULT_MODEL_SHA256, 16)
    assert json.dumps(list(install.CMAKE_FLAGS))
    assert "-DLLAMA_BUILD_TESTS=OFF" in install.CMAKE_FLAGS and "-DGGML_NATIVE=OFF" in install.CMAKE_FLAGS


def test_harmony_mode_body() -> None:
    lm = dsrs.LM("gpt-oss:gpt-oss-20b", base_url="http://127.0.0.1:8000", harmony=True, reasoning_effort="low")
    p = lm.provider()
    assert isinstance(p, GptOssProvider)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    request = lm.build_request(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        response_format=dsrs.ResponseFormat(name="out", schema=schema),
    )
    body = p.build_harmony_body(request)
    assert body["prompt"].startswith("<|start|>system<|message|>") and "Reasoning: low" in body["prompt"]
    assert "# Instructions\n\nBe brief." in body["prompt"] and "## out" in body["prompt"]
    assert body["prompt"].endswith("<|start|>user<|message|>hi<|end|><|start|>assistant")
    assert body["stop"] == ["<|return|>", "<|call|>"] and body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["grammar"].startswith('root ::= ("<|channel|>analysis<|message|>"')
    assert "final-json ::=" in body["grammar"]
    for local in ("harmony", "reasoning_effort"):
        assert local not in body
    http = p.encode(request)
    assert http.url == "http://127.0.0.1:8000/v1/completions"


def test_build_tools_from_a_target_dir(tmp_path: Path) -> None:
    """Where the cmake/ninja wheels put their executables under ``pip install --target``."""
    tools = tmp_path / "build-tools"
    cmake = tools / "cmake" / "data" / "bin" / "cmake"
    ninja_script = tools / "bin" / "ninja"
    for path, head in ((cmake, b"\x7fELF"), (ninja_script, b"#!/usr/bin/python\n")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(head + b"\0" * 16)
        path.chmod(0o755)
    assert install._tool_in(tools, "cmake") == cmake
    assert install._tool_in(tools, "ninja") is None  # an entry script needs its package on sys.path
    ninja_script.write_bytes(b"\x7fELF" + b"\0" * 16)
    assert install._tool_in(tools, "ninja") == ninja_script


def test_extract_takes_only_vendor_llama_cpp(tmp_path: Path) -> None:
    import io
    import tarfile

    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    members = {
        "llama_cpp_python-9.9.9/pyproject.toml": b"[project]\n",
        "llama_cpp_python-9.9.9/vendor/llama.cpp/CMakeLists.txt": b"project(llama)\n",
        "llama_cpp_python-9.9.9/vendor/llama.cpp/tools/server/server.cpp": b"int main() {}\n",
        "llama_cpp_python-9.9.9/vendor/llama.cpp/../../escape.txt": b"no\n",
    }
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / "src"
    install._extract_llama_cpp(sdist, dest)
    assert (dest / "CMakeLists.txt").read_bytes() == b"project(llama)\n"
    assert (dest / "tools" / "server" / "server.cpp").is_file()
    assert not (dest / "pyproject.toml").exists()
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.rglob("escape.txt"))


def test_extract_rejects_an_sdist_without_llama_cpp(tmp_path: Path) -> None:
    import io
    import tarfile

    sdist = tmp_path / "other-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo("other-1.0/setup.py")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"#\n"))
    with pytest.raises(install.InstallError, match=r"no vendor/llama\.cpp"):
        install._extract_llama_cpp(sdist, tmp_path / "src")


# --- serving defaults of auto-started servers ----------------------------------------------------


def test_threads_all_cores_when_idle_the_idle_ones_when_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMA_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    for idle, expected in ((8.0, 8), (7.8, 8), (7.4, 7), (4.2, 4), (0.0, 1), (1.6, 2)):
        monkeypatch.setattr(server, "_idle_cores", lambda idle=idle: idle)
        assert server.default_threads() == expected, idle
    monkeypatch.setenv("LLAMA_THREADS", "3")
    assert server.default_threads() == 3


def test_idle_cores_is_measured_from_proc_stat() -> None:
    idle = server._idle_cores(0.05)
    if idle is None:
        pytest.skip("no /proc/stat here")
    assert 0.0 <= idle <= (os.cpu_count() or 1) + 0.01


def test_slots_shrink_for_large_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMA_PARALLEL", raising=False)
    assert server.default_parallel(4096) == server.DEFAULT_PARALLEL == 8
    assert server.default_parallel(8192) == 4 and server.default_parallel(131072) == 1
    monkeypatch.setenv("LLAMA_PARALLEL", "3")
    assert server.default_parallel(4096) == 3


def test_shared_pool_command_and_flag_detection(tmp_path: Path) -> None:
    srv = server.LlamaServer("m.gguf", engine=server.Engine.prebuilt(), ctx_size=4096, parallel=8, kv_pool=8192)
    cmd = srv.command()
    assert cmd[cmd.index("--ctx-size") + 1] == "8192" and "--kv-unified" in cmd
    assert server.engine_supports(server.Engine.prebuilt(), "--kv-unified")
    old = tmp_path / "old-llama-server"
    old.write_text("#!/bin/sh\necho 'usage: llama-server [--parallel N] [--ctx-size N]'\n")
    old.chmod(0o755)
    assert not server.engine_supports(server.Engine.binary(old), "--kv-unified")
    assert server.engine_supports(server.Engine.binary(old), "--parallel")


def test_slots_get_the_full_context_each() -> None:
    srv = server.LlamaServer("m.gguf", engine=server.Engine.binary("/bin/true"), ctx_size=2048, parallel=4, threads=2)
    cmd = srv.command()
    assert cmd[cmd.index("--ctx-size") + 1] == "8192"
    assert cmd[cmd.index("--parallel") + 1] == "4" and "--cont-batching" in cmd
