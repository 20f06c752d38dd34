"""The ``gptoss`` provider: llama.cpp ``llama-server`` over the OpenAI chat wire, auto-started when local.

Model strings: ``gptoss:gpt-oss-20b``, ``gpt-oss:gpt-oss-20b``, ``llamacpp:<anything>``. Base URL:
``LM(base_url=...)``, else ``GPTOSS_BASE_URL``, else ``http://localhost:8000``.

Provider options (``LM("gptoss:...", auto_start=False)``) consumed here, not sent:

* ``auto_start`` (default True): start llama-server when the local URL does not answer;
* ``model_path``: the GGUF to serve (else ``LLAMA_MODEL_PATH`` / discovery dirs);
* ``num_ctx`` / ``ctx_size``: context size of an auto-started server;
* ``threads``: compute threads of an auto-started server (default: :func:`server.default_threads`,
  every core on an idle machine, the idle ones otherwise);
* ``parallel``: slots of an auto-started server, each with ``ctx_size`` tokens (default 8, fewer
  for large contexts; continuous batching);
* ``startup_timeout`` (s, default 120);
* ``harmony`` (default False): render the conversation as Harmony ourselves and use
  ``/v1/completions`` (for a server started without ``--jinja``); ``reasoning_effort``
  (``low``/``medium``/``high``) goes into its system message;
* ``structured``: ``"auto"`` (default), ``"json_schema"`` or ``"grammar"`` — how a JSON schema is
  enforced: llama-server's own ``response_format`` conversion, or our :mod:`dsrs_gptoss.gbnf`
  grammar in the ``grammar`` field. ``auto`` uses the grammar when the schema needs it (string
  formats llama.cpp ignores) or when this server rejected ``json_schema`` before.
* ``vision`` (default False): the server has a multimodal projector (started with ``--mmproj``;
  its ``GET /props`` then reports ``modalities.vision``), so image parts are sent as ``image_url``
  (llama.cpp ``docs/multimodal.md``). Without it every image, audio or file part is refused before
  sending: a text-only model would never see it.

Every other option (``top_p``, ``top_k``, ``min_p``, ``repeat_penalty``, ``grammar``,
``chat_template_kwargs``, ...) goes into the request body as is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from dsrs import ProbeResult, ProviderConfig, ProviderSpec
from dsrs.errors import InvalidRequestError, LMError, ProviderUnavailableError, ResponseParseError
from dsrs.transport import HttpRequest, HttpResponse
from dsrs.types import LMRequest, LMResponse, StreamChunk
from dsrs.wire import OpenAICompatibleProvider, openai_chat
from dsrs_gptoss import gbnf, harmony, server

__all__ = ["DEFAULT_MAX_TOKENS", "GptOssProvider", "LOCAL_OPTIONS"]

#: Sent when neither the LM nor the call sets max_tokens (llama-server's own default is unbounded).
DEFAULT_MAX_TOKENS = 512
#: Options that configure the lane and are never sent to the server.
LOCAL_OPTIONS = frozenset(
    {
        "auto_start",
        "model_path",
        "num_ctx",
        "ctx_size",
        "threads",
        "parallel",
        "startup_timeout",
        "structured",
        "harmony",
        "reasoning_effort",
        "vision",
    }
)
#: Stop strings of raw Harmony completions: the model is done (return) or wants a tool (call).
HARMONY_STOPS = (harmony.RETURN, harmony.CALL)
_HARMONY_OPENERS = (harmony.CHANNEL, harmony.START)
_STRUCTURED_MODES = ("auto", "json_schema", "grammar")
# Servers (by base URL) that answered an error to response_format json_schema: use grammar there.
_NO_JSON_SCHEMA: set[str] = set()


class GptOssProvider(OpenAICompatibleProvider):
    """llama-server (gpt-oss or any GGUF); auto-started on first use when the URL is local."""

    default_base_url: ClassVar[str | None] = server.DEFAULT_BASE_URL
    base_url_env: ClassVar[tuple[str, ...]] = ("GPTOSS_BASE_URL",)
    supports_response_format: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec, config: ProviderConfig) -> None:
        super().__init__(spec, config)
        opts = config.options
        self.requested_base_url = self.base_url
        self.auto_start = bool(opts.get("auto_start", True))
        self.model_path = opts.get("model_path")
        self.ctx_size = int(opts.get("ctx_size") or opts.get("num_ctx") or 4096)
        self.startup_timeout = float(opts.get("startup_timeout") or 120.0)
        self.threads = int(opts["threads"]) if opts.get("threads") else None
        self.parallel = int(opts["parallel"]) if opts.get("parallel") else None
        structured = str(opts.get("structured", "auto"))
        if structured not in _STRUCTURED_MODES:
            raise ValueError(f"structured must be one of {_STRUCTURED_MODES}, got {structured!r}")
        self.structured = structured
        self.harmony = bool(opts.get("harmony", False))
        # Images only with a projector (see ``vision`` above); never audio or files.
        self._wire = dataclasses.replace(
            self.wire_options, parts=frozenset({"image"}) if opts.get("vision") else frozenset()
        )
        self._stream_headers = {**self.endpoint.headers, "accept": "text/event-stream", "connection": "close"}
        self.handle: server.ServerHandle | None = None

    # --- server lifecycle ---------------------------------------------------------------------

    async def ensure_ready(self, model: str) -> server.ServerHandle:
        """Reuse or auto-start the server (once per provider instance; cheap afterwards).

        Concurrent first calls (from any event loop or thread) meet in :func:`server.ensure_server`,
        which starts at most one server per base URL.
        """
        handle = self.handle
        if handle is not None and (handle.server is None or handle.server.is_running()):
            return handle
        handle = await asyncio.to_thread(
            server.ensure_server,
            self.requested_base_url,
            model=model,
            model_path=self.model_path,
            ctx_size=self.ctx_size,
            threads=self.threads,
            parallel=self.parallel,
            startup_timeout=self.startup_timeout,
            auto_start=self.auto_start,
        )
        self._use(handle)
        return handle

    def _use(self, handle: server.ServerHandle) -> None:
        self.handle = handle
        self.base_url = handle.base_url.rstrip("/")
        self.url = openai_chat.chat_url(self.base_url)

    async def aclose(self) -> None:
        """Forget the server handle (an auto-started server stays up for reuse; it stops at exit)."""
        self.handle = None

    # --- encoding -------------------------------------------------------------------------------

    def _use_grammar(self, request: LMRequest) -> bool:
        rf = request.response_format
        if rf is None or rf.type != "json_schema" or rf.schema is None or "grammar" in request.options:
            return False
        mode = str(request.options.get("structured", self.structured))
        if mode == "grammar":
            return True
        if mode == "json_schema":
            return False
        if self.base_url in _NO_JSON_SCHEMA or gbnf.needs_own_grammar(rf.schema):
            return True
        seen = server.capabilities_of(self.base_url)
        return seen is not None and not seen.json_schema

    def build_body(self, request: LMRequest, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body for llama-server (public so benchmarks can send the identical request)."""
        sendable = {k: v for k, v in request.options.items() if k not in LOCAL_OPTIONS}
        use_grammar = self._use_grammar(request)
        wire_request = dataclasses.replace(
            request,
            options=sendable,
            max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
            response_format=None if use_grammar else request.response_format,
        )
        body = openai_chat.encode_body(wire_request, stream=stream, options=self._wire)
        if use_grammar:
            assert request.response_format is not None and request.response_format.schema is not None
            try:
                body["grammar"] = gbnf.schema_to_gbnf(request.response_format.schema)
            except gbnf.UnsupportedSchemaError as exc:
                raise InvalidRequestError(str(exc), provider=self.name, model=request.model) from None
        return body

    def build_harmony_body(self, request: LMRequest) -> dict[str, Any]:
        """A ``/v1/completions`` body whose prompt is the conversation rendered as Harmony.

        A JSON schema goes into the developer message (``# Response Formats``) and, as our grammar,
        constrains the ``final`` message (after an optional ``analysis`` message).
        """
        for m in request.messages:  # a Harmony prompt is text: a media part is refused, never dropped
            for part in m.parts:
                if part.kind != "text":
                    raise openai_chat.unsupported_part(self.name, request.model, part, "a Harmony prompt is text only")
        rf = request.response_format
        schema = rf.schema if rf is not None and rf.type == "json_schema" else None
        effort = request.options.get("reasoning_effort", "medium")
        prompt = harmony.render_conversation(
            request.messages,
            tools=request.tools,
            reasoning=str(effort) if effort else None,
            response_format=(rf.name, schema) if rf is not None and schema is not None else None,
        )
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": prompt,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stop": [*(request.stop or ()), *HARMONY_STOPS],
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.seed is not None:
            body["seed"] = request.seed
        body.update({k: v for k, v in request.options.items() if k not in LOCAL_OPTIONS})
        if schema is not None and "grammar" not in body:
            try:
                json_rules = gbnf.schema_to_gbnf(schema).replace("root ::=", "final-json ::=", 1)
            except gbnf.UnsupportedSchemaError as exc:
                raise InvalidRequestError(str(exc), provider=self.name, model=request.model) from None
            body["grammar"] = (
                'root ::= ("<|channel|>analysis<|message|>" [^<]* "<|end|><|start|>assistant")? '
                '"<|channel|>final<|message|>" final-json\n' + json_rules
            )
        return body

    def encode(self, request: LMRequest, *, stream: bool = False) -> HttpRequest:
        if self.harmony:
            data = json.dumps(self.build_harmony_body(request), ensure_ascii=False, separators=(",", ":")).encode()
            url = openai_chat.chat_url(self.base_url).removesuffix("/chat/completions") + "/completions"
            return HttpRequest("POST", url, self.endpoint.headers, data, self.timeout)
        body = self.build_body(request, stream=stream)
        # A streamed answer gets a connection of its own: aiohttp reuses the connection after
        # llama-server's chunked SSE response and every second stream then fails with "Can not write
        # request body" (seen with aiohttp 3.14 and llama.cpp from llama-cpp-python 0.3.36; a fresh
        # loopback connection costs well under a millisecond).
        headers = self.endpoint.headers if not stream else self._stream_headers
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return HttpRequest("POST", self.url, headers, data, self.timeout)

    # --- calls ----------------------------------------------------------------------------------

    async def acomplete(self, request: LMRequest) -> LMResponse:
        try:
            return await self._acomplete(request)
        except ProviderUnavailableError as exc:
            if exc.status is None:  # connection lost: look for (or start) a server again next time
                self.handle = None
            raise

    async def _acomplete(self, request: LMRequest) -> LMResponse:
        await self.ensure_ready(request.model)
        t0 = time.perf_counter()
        try:
            resp = await self.send(self.encode(request), request)
        except InvalidRequestError as exc:
            if "schema" not in (exc.body or "").lower() or not self._retry_with_grammar(request):
                raise
            resp = await self.send(self.encode(request), request)
        except LMError as exc:
            if exc.status is None or exc.status < 500 or not self._retry_with_grammar(request):
                raise
            resp = await self.send(self.encode(request), request)
        return self._finish(self.decode(resp, request), time.perf_counter() - t0, None)

    def _retry_with_grammar(self, request: LMRequest) -> bool:
        """A server that rejects ``json_schema`` gets our grammar instead (once, then remembered)."""
        rf = request.response_format
        if rf is None or rf.type != "json_schema" or rf.schema is None or self.base_url in _NO_JSON_SCHEMA:
            return False
        if self._use_grammar(request) or str(request.options.get("structured", self.structured)) != "auto":
            return False
        _NO_JSON_SCHEMA.add(self.base_url)
        return True

    def decode(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        if self.harmony:
            return self._decode_harmony(resp, request)
        return openai_chat.decode_response(
            resp.status, resp.headers, resp.content, provider=self.name, model=request.model
        )

    def _decode_harmony(self, resp: HttpResponse, request: LMRequest) -> LMResponse:
        """A ``/v1/completions`` answer whose text is raw Harmony: split into answer, reasoning, tool calls."""
        try:
            data = json.loads(resp.content)
            choice = data["choices"][0]
            text = str(choice.get("text") or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise ResponseParseError(
                "not a completions answer", provider=self.name, model=request.model, body=resp.content
            ) from None
        parsed = harmony.parse_completion(text)
        usage = openai_chat.parse_usage(data.get("usage"))
        if isinstance(data.get("timings"), dict):
            usage = dataclasses.replace(usage, detail={**usage.detail, "timings": data["timings"]})
        finish = choice.get("finish_reason")
        if parsed.tool_calls:
            finish = "tool_calls"
        return LMResponse(
            text=parsed.final,
            usage=usage,
            tool_calls=parsed.tool_calls,
            reasoning=parsed.reasoning or None,
            finish_reason=finish,
            raw_usage=data.get("usage"),
            provider=self.name,
            model=data.get("model") or request.model,
        )

    async def astream(self, request: LMRequest) -> AsyncIterator[StreamChunk]:
        if self.harmony:  # raw Harmony is parsed whole: one chunk with the answer
            response = await self.acomplete(request)
            yield StreamChunk(text=response.text, reasoning=response.reasoning or "")
            yield StreamChunk(response=response)
            return
        await self.ensure_ready(request.model)
        t0 = time.perf_counter()
        first: float | None = None
        # Raw Harmony in the content (a gpt-oss server without --jinja) is split as it streams, so
        # reasoning never shows up among the answer's deltas. Undecided while the text so far could
        # still be the start of a Harmony marker.
        pending = ""
        splitter: harmony.HarmonyStreamSplitter | None = None
        decided = False
        async for chunk in super().astream(request):
            if chunk.response is not None:
                if not decided and pending:
                    yield StreamChunk(text=pending)
                elif splitter is not None:
                    answer, thought = splitter.close()
                    if answer or thought:
                        yield StreamChunk(text=answer, reasoning=thought)
                yield StreamChunk(response=self._finish(chunk.response, time.perf_counter() - t0, first))
                continue
            if first is None and (chunk.text or chunk.reasoning):
                first = time.perf_counter() - t0
            text = chunk.text
            if not decided and text:
                pending += text
                head = pending.lstrip()
                if any(marker.startswith(head) for marker in _HARMONY_OPENERS):
                    if chunk.reasoning:
                        yield StreamChunk(reasoning=chunk.reasoning)
                    continue  # could still become "<|channel|>" / "<|start|>"
                decided = True
                if head.startswith(_HARMONY_OPENERS):
                    splitter = harmony.HarmonyStreamSplitter()
                text, pending = pending, ""
            if splitter is not None and text:
                answer, thought = splitter.feed(text)
                if answer or thought or chunk.reasoning:
                    yield StreamChunk(text=answer, reasoning=thought + chunk.reasoning)
            elif text or chunk.reasoning:
                yield StreamChunk(text=text, reasoning=chunk.reasoning)

    def _finish(self, response: LMResponse, wall: float, ttft: float | None) -> LMResponse:
        """Split raw Harmony output into reasoning/answer; add wall time and speed to the usage detail."""
        text, reasoning = response.text, response.reasoning
        if harmony.looks_like_harmony(text):
            parsed = harmony.parse_completion(text)
            text = parsed.final
            reasoning = "\n".join(r for r in (reasoning, parsed.reasoning) if r) or None
        usage = response.usage
        detail: dict[str, Any] = dict(usage.detail)
        detail["wall_seconds"] = round(wall, 6)
        if ttft is not None:
            detail["ttft_seconds"] = round(ttft, 6)
        timings = detail.get("timings")
        server_tps = timings.get("predicted_per_second") if isinstance(timings, Mapping) else None
        if isinstance(server_tps, (int, float)):
            detail["tokens_per_second"] = round(float(server_tps), 2)
        elif wall > 0 and usage.completion_tokens:
            detail["tokens_per_second"] = round(usage.completion_tokens / wall, 2)
        detail["base_url"] = self.base_url
        if self.handle is not None and self.handle.model_path is not None:
            detail["model_file"] = self.handle.model_path.name
        return dataclasses.replace(
            response, text=text, reasoning=reasoning, usage=dataclasses.replace(usage, detail=detail)
        )

    # --- probe ----------------------------------------------------------------------------------

    @classmethod
    async def probe(cls, spec: ProviderSpec, timeout: float) -> ProbeResult:
        """Configured: ``GPTOSS_BASE_URL`` set, or an engine (:func:`server.find_engine`) and a model local.

        Reachable: ``GET /health`` answers ok. A local URL with nothing running but an engine and a
        model at hand is reported configured with ``reachable=None`` (auto-starts on first call).
        """
        import os

        base = (os.environ.get("GPTOSS_BASE_URL") or server.DEFAULT_BASE_URL).rstrip("/")
        local_parts: str | None = None
        local_model: str | None = None
        try:
            engine = server.find_engine()
            model = server.find_model(spec.default_model or "")
            local_parts = f"{engine.name} + {model.name}"
            local_model = model.name.removesuffix(".gguf")
        except server.LlamaServerError as exc:
            missing = exc.message
        else:
            missing = ""
        configured = bool(os.environ.get("GPTOSS_BASE_URL")) or local_parts is not None
        t0 = time.perf_counter()
        status, body = await asyncio.to_thread(server.health, base, min(timeout, 5.0))
        latency = (time.perf_counter() - t0) * 1000
        if status == 200 and '"ok"' in body.replace(" ", ""):
            return ProbeResult(True, True, latency, f"llama-server ok at {base}", spec.default_model)
        if not configured:
            return ProbeResult(False, None, None, f"set GPTOSS_BASE_URL or run `{server.INSTALL_HINT}` ({missing})")
        if local_parts is not None and server.is_local(base):
            detail = f"not running at {base}; auto-starts on first call ({local_parts})"
            return ProbeResult(True, None, None, detail, local_model)
        reason = f"HTTP {status}" if status is not None else body
        return ProbeResult(True, False, latency if status is not None else None, f"unreachable at {base}: {reason}")
