"""Test helpers, public so other packages' tests can run against a real llama-server too.

::

    from dsrs_gptoss.testing import tiny_gguf, running_server

    with running_server(tiny_gguf()) as srv:      # random-weight model, loads in well under a second
        lm = dsrs.LM("openai-compatible-name", base_url=srv.base_url)

    with running_server(smollm2()) as srv:         # a real instruct model (98 MB), meaningful answers
        ...

Models come through :mod:`dsrs_gptoss.install` (cached under ``$DSRS_CACHE_HOME``); the server is
the engine :func:`dsrs_gptoss.server.find_engine` picks (the prebuilt xllamacpp engine on a fresh
machine: no build). :func:`engine` names one explicitly, for tests run on both engines.
:func:`write_tiny_gguf` needs the ``gguf`` package (``pip install dsrs-gptoss[test]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsrs_gptoss import engine as prebuilt
from dsrs_gptoss import install
from dsrs_gptoss.server import BinaryNotFoundError, Engine, EngineKind, LlamaServer, find_binary

__all__ = [
    "TINY_CHAT_TEMPLATE",
    "TINY_CONTROL_TOKEN_BAN",
    "TINY_HARMONY_TEMPLATE",
    "tiny_harmony_gguf",
    "write_tiny_gguf",
    "tiny_gguf",
    "smollm2",
    "llama_server_binary",
    "ENGINES",
    "engine",
    "running_server",
]

#: A ChatML-style Jinja template written into the tiny model (llama-server --jinja renders it).
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_TINY_NAME = "dsrs-tiny-random-v1.gguf"
#: ``logit_bias`` that keeps the tiny model from sampling <unk>/<s>: with random weights they come up as
#: often as text, and llama.cpp checks grammars against their "<s>" text while writing nothing out.
TINY_CONTROL_TOKEN_BAN: list[list[int | bool]] = [[0, False], [1, False]]


#: A minimal Harmony template (what gpt-oss models ship): llama-server recognises the gpt-oss chat
#: format by it and splits the analysis channel into ``reasoning_content``.
TINY_HARMONY_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "<|start|>assistant<|channel|>final<|message|>{{ m['content'] }}<|end|>"
    "{% else %}<|start|>{{ m['role'] }}<|message|>{{ m['content'] }}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
)


def write_tiny_gguf(
    path: str | Path, *, seed: int = 0, n_embd: int = 64, n_layer: int = 2, chat_template: str = TINY_CHAT_TEMPLATE
) -> Path:
    """Write a random-weight llama GGUF with an ASCII vocabulary (SentencePiece style, ``▁`` = space).

    Its text is gibberish, but it exercises the whole server path — tokenizer, chat template,
    sampling, grammars, streaming, usage — in milliseconds per request.
    """
    import numpy as np
    from gguf import GGUFWriter, TokenType

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens: list[str] = ["<unk>", "<s>", "</s>", "<0x09>", "<0x0A>", "▁"]
    types: list[int] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.BYTE, TokenType.BYTE]
    types.append(TokenType.NORMAL)
    for code in range(0x21, 0x7F):
        tokens.append(chr(code))
        types.append(TokenType.NORMAL)
    for word in ("▁the", "▁a", "▁is", "▁of", "in", "er", "on", "an"):
        tokens.append(word)
        types.append(TokenType.NORMAL)
    n_vocab = len(tokens)
    n_head = 4
    n_ff = n_embd * 2
    rng = np.random.default_rng(seed)

    def weight(rows: int, cols: int) -> Any:
        return (rng.standard_normal((rows, cols)) * 0.5).astype(np.float32)

    tmp = path.with_suffix(".tmp")
    writer = GGUFWriter(str(tmp), "llama")
    writer.add_name("dsrs tiny random")
    writer.add_context_length(4096)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * 3 + [-1000.0] * 2 + [float(-i) for i in range(n_vocab - 5)])
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, n_embd))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return path


def tiny_gguf() -> Path:
    """The tiny random model, written once into ``$DSRS_CACHE_HOME/test-models/`` (outside model discovery)."""
    path = install.cache_home() / "test-models" / _TINY_NAME
    if not path.is_file():
        write_tiny_gguf(path)
    return path


def tiny_harmony_gguf() -> Path:
    """The tiny random model with a Harmony chat template (gpt-oss's format), for reasoning tests."""
    path = install.cache_home() / "test-models" / _TINY_NAME.replace("random", "harmony")
    if not path.is_file():
        write_tiny_gguf(path, chat_template=TINY_HARMONY_TEMPLATE)
    return path


def smollm2() -> Path:
    """SmolLM2-135M-Instruct, via ``dsrs-gptoss install`` (cached, sha256-verified)."""
    return install.install_model(report=lambda _msg: None)


def llama_server_binary() -> Path:
    """llama-server built from source via ``dsrs-gptoss install --from-source`` (minutes once; cached)."""
    return install.install_server()


#: The engines tests run on: the prebuilt wheel, and a llama-server binary (source-built or the user's).
ENGINES: tuple[EngineKind, ...] = ("xllamacpp", "llama-server")


def engine(kind: EngineKind) -> Engine:
    """An engine of this kind, without building anything; :class:`LookupError` says why there is none.

    ``llama-server``: ``LLAMA_SERVER_BIN``, PATH or the ``--from-source`` build in the cache.
    """
    if kind == "xllamacpp":
        if not prebuilt.available():
            raise LookupError("xllamacpp is not installed in this interpreter")
        try:
            prebuilt.check_version()
        except prebuilt.EngineCheckError as exc:
            raise LookupError(str(exc)) from None
        return Engine.prebuilt()
    try:
        return Engine.binary(find_binary())
    except BinaryNotFoundError as exc:
        raise LookupError(exc.message) from None


@contextmanager
def running_server(model_path: str | Path, **kwargs: Any) -> Iterator[LlamaServer]:
    """A server of our own on a free port (engine from ``engine=``/``binary=``, else find_engine), stopped on exit."""
    with LlamaServer(model_path, **kwargs) as server:
        yield server
