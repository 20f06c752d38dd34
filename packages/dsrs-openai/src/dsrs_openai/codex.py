"""The headless Codex CLI as a provider: one isolated ``codex exec --json`` run per call.

``LM("codex:gpt-5-codex")`` (``codex:default`` lets Codex pick its configured model). Each call
starts a fresh process in a fresh temporary working directory with ``--ephemeral`` (no session
files), so no two calls share a thread. Approvals are ``never`` and the sandbox is ``read-only``
unless the options say otherwise; nothing waits for a human.

Options: ``codex_bin`` (else ``CODEX_BIN``, else ``codex`` on ``PATH``, else the npm cache under
``${DSRS_CACHE_HOME:-~/.cache/dsrs}/npm``), ``sandbox`` (``read-only``/``workspace-write``/
``danger-full-access``), ``cwd`` (working root; default a new temp dir per call), ``config``
(``{"key": value}`` → ``-c key=<TOML value>``, e.g. a ``model_providers`` table), ``profile``,
``ignore_user_config`` and ``codex_home`` (``CODEX_HOME`` for the run: auth and config). An
``LM(api_key=...)`` reaches the process as ``CODEX_API_KEY`` (environment only, never argv).

The JSONL events (``thread.started``, ``turn.started``, ``item.*``, ``turn.completed`` with
``usage{input_tokens, cached_input_tokens, output_tokens}``, ``turn.failed``, ``error``) become the
answer (the last ``agent_message``), reasoning (``reasoning`` items) and usage. Codex reports
failures as text it writes itself (no codes); :func:`classify_codex_error` matches those messages
(recorded from codex-cli 0.169 against a loopback server), anchored, never the model's output.
``temperature``, ``seed``, ``stop``, ``max_tokens`` and tools do not exist in ``codex exec``: asking
for them is an :class:`InvalidRequestError`, not a silent drop. ``response_format`` json_schema is
passed as ``--output-schema``. A timeout kills the whole process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dsrs import ProbeResult, Provider, ProviderConfig, ProviderSpec, errors
from dsrs.types import LMRequest, LMResponse, LmUsage, Message, StreamChunk, Text
from dsrs.wire import openai_chat

__all__ = ["CodexProvider", "CodexRun", "classify_codex_error", "find_codex", "parse_events", "render_prompt"]

DEFAULT_TIMEOUT = 600.0
_SANDBOXES = ("read-only", "workspace-write", "danger-full-access")
_OPTIONS = frozenset({"codex_bin", "sandbox", "cwd", "config", "profile", "ignore_user_config", "codex_home"})
_KILL_GRACE = 2.0


def _cache_home() -> Path:
    return Path(os.environ.get("DSRS_CACHE_HOME") or Path.home() / ".cache" / "dsrs")


def find_codex(explicit: str | None = None) -> str | None:
    """The codex executable: ``explicit``, ``CODEX_BIN``, ``PATH``, then dsrs's npm cache."""
    for candidate in (explicit, os.environ.get("CODEX_BIN")):
        if candidate:
            found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
            return found
    found = shutil.which("codex")
    if found:
        return found
    cached = _cache_home() / "npm" / "node_modules" / ".bin" / "codex"
    return str(cached) if os.access(cached, os.X_OK) else None


def render_prompt(messages: tuple[Message, ...]) -> str:
    """One prompt text for ``codex exec``: a lone user message as is, else labelled sections.

    The prompt is text: an image, audio or file part is refused (never dropped)."""
    for m in messages:
        for part in m.parts:
            if not isinstance(part, Text):
                raise openai_chat.unsupported_part("codex", None, part, "codex exec takes a text prompt")
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].text
    parts = []
    for m in messages:
        label = {
            "system": "Instructions",
            "developer": "Instructions",
            "user": "User",
            "assistant": "Assistant",
            "tool": "Tool result",
        }[m.role]
        parts.append(f"## {label}\n{m.text}")
    return "\n\n".join(parts)


def _toml(value: Any) -> str:
    """A TOML value for ``-c key=value`` (strings quoted, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot express {type(value).__name__} as a TOML value")


_UNEXPECTED_STATUS = re.compile(r"^unexpected status (\d{3})\b")
_LAST_STATUS = re.compile(r"^exceeded retry limit, last status: (\d{3})\b")


def classify_codex_error(
    message: str, *, provider: str = "codex", model: str | None = None, secrets: tuple[str, ...] = ()
) -> errors.LMError:
    """A typed error from a Codex ``turn.failed``/``error`` message (Codex's own wording, anchored)."""
    msg = message.strip()
    kw: dict[str, Any] = {"provider": provider, "model": model, "body": msg, "secrets": secrets}
    m = _UNEXPECTED_STATUS.match(msg) or _LAST_STATUS.match(msg)
    status = int(m.group(1)) if m else None
    if status is not None:
        kw["status"] = status
    lowered = msg.lower()
    if lowered.startswith("quota exceeded") or lowered.startswith("you've hit your usage limit"):
        return errors.QuotaExceededError(msg, **kw)
    if status == 429:
        return errors.RateLimitError(msg, **kw)
    if lowered.startswith("codex ran out of room in the model's context window"):
        return errors.ContextWindowExceededError(msg, **kw)
    if status == 401:
        return errors.AuthenticationError(msg, **kw)
    if status == 403:
        return errors.PermissionDeniedError(msg, **kw)
    if status is not None and status >= 500:
        return errors.ProviderUnavailableError(msg, **kw)
    if status is not None and 400 <= status < 500:
        return errors.InvalidRequestError(msg, **kw)
    if lowered.replace("\u2019", "'").startswith(
        ("we're currently experiencing high demand", "stream disconnected", "reconnecting")
    ):
        return errors.ProviderUnavailableError(msg, **kw)
    return errors.LMError(msg, **kw)


@dataclass
class CodexRun:
    """What one ``codex exec --json`` run reported."""

    thread_id: str | None = None
    messages: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    failure: str | None = None
    completed: bool = False

    def feed(self, line: bytes | str) -> StreamChunk | None:
        """Apply one JSONL event; returns a reasoning chunk when one completes."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.strip()
        if not text:
            return None
        try:
            event = json.loads(text)
        except ValueError:
            return None  # codex may print a non-JSON notice; events are the JSON lines
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = event.get("thread_id")
        elif kind == "item.completed" and isinstance(event.get("item"), Mapping):
            item = event["item"]
            itype = item.get("type")
            if itype == "agent_message":
                self.messages.append(str(item.get("text") or ""))
            elif itype == "reasoning" and item.get("text"):
                self.reasoning.append(str(item["text"]))
                return StreamChunk(reasoning=str(item["text"]))
            elif itype == "error":  # non-fatal notices ("model metadata not found ...")
                self.warnings.append(str(item.get("message") or ""))
        elif kind == "turn.completed":
            self.completed = True
            self.usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
        elif kind == "turn.failed":
            err = event.get("error")
            self.failure = str(err.get("message") if isinstance(err, Mapping) else err or "turn failed")
        elif kind == "error" and self.failure is None:
            self.failure = str(event.get("message") or "error")
        return None

    def lm_usage(self) -> LmUsage:
        u = self.usage or {}
        prompt = int(u.get("input_tokens") or 0)
        completion = int(u.get("output_tokens") or 0)
        return LmUsage.from_tokens(
            prompt,
            completion,
            cached_tokens=min(int(u.get("cached_input_tokens") or 0), prompt),
            reasoning_tokens=int(u.get("reasoning_output_tokens") or 0),
            detail={"codex_thread_id": self.thread_id, "codex_warnings": list(self.warnings)}
            if self.warnings
            else {"codex_thread_id": self.thread_id},
        )


def parse_events(lines: list[str] | list[bytes]) -> CodexRun:
    """Parse a whole recorded JSONL event stream."""
    run = CodexRun()
    for line in lines:
        run.feed(line)
    return run


def _write_text(path: str, text: str) -> None:
    Path(path).write_text(text, "utf-8")


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, then SIGKILL it after a grace period."""
    if proc.returncode is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), _KILL_GRACE)
            return
        except asyncio.TimeoutError:
            continue


class CodexProvider(Provider):
    """``codex exec --json``, one isolated process per call."""

    supports_streaming: ClassVar[bool] = True
    supports_response_format: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        unknown = sorted(set(config.options) - _OPTIONS)
        if unknown:
            raise errors.InvalidRequestError(
                f"unknown codex option(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(_OPTIONS))}",
                provider=spec.name,
            )
        sandbox = str(config.options.get("sandbox", "read-only"))
        if sandbox not in _SANDBOXES:
            raise errors.InvalidRequestError(
                f"sandbox must be one of {_SANDBOXES}, got {sandbox!r}", provider=spec.name
            )
        self.sandbox = sandbox

    def __repr__(self) -> str:
        return f"CodexProvider(name={self.name!r}, sandbox={self.sandbox!r})"

    @property
    def timeout(self) -> float:
        return self.config.timeout if self.config.timeout is not None else DEFAULT_TIMEOUT

    def _check(self, request: LMRequest) -> None:
        unsupported = [
            name
            for name, value in (
                ("temperature", request.temperature),
                ("seed", request.seed),
                ("stop", request.stop),
                ("max_tokens", request.max_tokens),
            )
            if value is not None
        ]
        if request.tools:
            unsupported.append("tools")
        extra = sorted(set(request.options) - _OPTIONS)
        if unsupported or extra:
            raise errors.InvalidRequestError(
                f"codex exec has no {', '.join(unsupported + extra)} setting; remove it from this LM",
                provider=self.name,
                model=request.model,
            )

    def command(self, request: LMRequest, workdir: str, schema_file: str | None) -> list[str]:
        """The argv of one run (the prompt goes to stdin)."""
        opts = request.options
        binary = find_codex(opts.get("codex_bin"))
        if binary is None:
            raise errors.ProviderUnavailableError(
                "codex CLI not found: set CODEX_BIN, put codex on PATH, or `npm install @openai/codex`",
                provider=self.name,
                model=request.model,
            )
        argv = [
            binary,
            "exec",
            "--json",
            "--color",
            "never",
            "--skip-git-repo-check",
            "--ephemeral",
            "--sandbox",
            self.sandbox,
            "-C",
            workdir,
        ]
        if request.model and request.model != "default":
            argv += ["-m", request.model]
        if opts.get("profile"):
            argv += ["-p", str(opts["profile"])]
        if opts.get("ignore_user_config"):
            argv.append("--ignore-user-config")
        argv += ["-c", 'approval_policy="never"']
        config = opts.get("config") or {}
        if not isinstance(config, Mapping):
            raise errors.InvalidRequestError(
                "codex option config must be a mapping of key to value", provider=self.name
            )
        for key, value in config.items():
            argv += ["-c", f"{key}={_toml(value)}"]
        if schema_file is not None:
            argv += ["--output-schema", schema_file]
        argv.append("-")
        return argv

    async def _run(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        self._check(request)
        with tempfile.TemporaryDirectory(prefix="dsrs-codex-") as scratch:
            workdir = str(request.options.get("cwd") or scratch)
            schema_file = None
            rf = request.response_format
            if rf is not None and rf.schema is not None:
                schema_file = os.path.join(scratch, "output-schema.json")
                _write_text(schema_file, json.dumps(dict(rf.schema)))
            argv = self.command(request, workdir, schema_file)
            env = dict(os.environ)
            if request.options.get("codex_home"):
                env["CODEX_HOME"] = str(request.options["codex_home"])
            if self.config.api_key:
                env["CODEX_API_KEY"] = self.config.api_key
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise errors.ProviderUnavailableError(
                    f"cannot start codex: {exc}", provider=self.name, model=request.model
                ) from None
            run = CodexRun()
            stderr_tail: list[bytes] = []

            async def drain_stderr() -> None:
                assert proc.stderr is not None
                async for line in proc.stderr:
                    stderr_tail.append(line)
                    del stderr_tail[:-40]

            stderr_task = asyncio.ensure_future(drain_stderr())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(render_prompt(request.messages).encode("utf-8"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await proc.stdin.drain()
                proc.stdin.close()
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise asyncio.TimeoutError
                    line = await asyncio.wait_for(proc.stdout.readline(), remaining)
                    if not line:
                        break
                    chunk = run.feed(line)
                    if chunk is not None:
                        yield chunk
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - loop.time()))
                await asyncio.wait_for(stderr_task, 5)
            except asyncio.TimeoutError:
                await _kill_group(proc)
                raise errors.LMTimeoutError(
                    f"codex exec gave no answer within {self.timeout:g}s (process group killed)",
                    provider=self.name,
                    model=request.model,
                ) from None
            finally:
                if proc.returncode is None:
                    await _kill_group(proc)
                stderr_task.cancel()
        if run.failure is not None:
            raise classify_codex_error(
                run.failure, provider=self.name, model=request.model, secrets=self.config.secrets()
            )
        if not run.completed:
            tail = b"".join(stderr_tail).decode("utf-8", "replace")[-1500:]
            raise errors.ProviderUnavailableError(
                f"codex exited with status {proc.returncode} before the turn completed",
                provider=self.name,
                model=request.model,
                body=tail,
                secrets=self.config.secrets(),
            )
        text = run.messages[-1] if run.messages else ""
        yield StreamChunk(
            text=text,
            response=LMResponse(
                text=text,
                usage=run.lm_usage(),
                reasoning="".join(run.reasoning) or None,
                finish_reason="stop",
                raw_usage=run.usage,
                provider=self.name,
                model=request.model,
            ),
        )

    async def acomplete(self, request: LMRequest) -> LMResponse:
        final = None
        async for chunk in self._run(request):
            if chunk.response is not None:
                final = chunk.response
        assert final is not None
        return final

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        async for chunk in self._run(request):
            yield chunk

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured when the codex binary is found; reachable when ``codex login status`` succeeds
        or an API key (``CODEX_API_KEY``/``OPENAI_API_KEY``) is set and the binary runs."""
        binary = find_codex()
        if binary is None:
            return ProbeResult(False, None, None, "codex CLI not found (CODEX_BIN, PATH, or npm install @openai/codex)")
        keyed = bool(os.environ.get("CODEX_API_KEY") or os.environ.get("OPENAI_API_KEY"))
        args = ["--version"] if keyed else ["login", "status"]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            proc = await asyncio.create_subprocess_exec(
                binary,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            return ProbeResult(True, False, None, f"codex does not start: {exc}")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            await _kill_group(proc)
            return ProbeResult(True, False, None, f"codex {' '.join(args)} timed out")
        latency = (loop.time() - t0) * 1000
        if proc.returncode != 0:
            return ProbeResult(True, False, latency, "codex is not logged in (codex login, or set CODEX_API_KEY)")
        return ProbeResult(
            True, True, latency, out.decode("utf-8", "replace").strip()[:200] or "ok", spec.default_model
        )
