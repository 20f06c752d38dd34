"""End to end: a DSPy program on the project's real local model, through dsrs-gptoss, behind a LaneMux.

The first lane is a closed port (failover happens for real), the second dsrs-gptoss's provider on a
server this test starts with SmolLM2-135M-Instruct. A GBNF grammar holds the tiny model to DSPy's
ChatAdapter format, so ``dspy.Predict`` parses what a real model wrote. Skipped, with the reason,
when dsrs-gptoss, an engine or the cached model is missing — nothing is built or downloaded here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest

import dsrs
import dsrs_dspy
from dsrs.testing import isolated_plugins

gptoss_testing = pytest.importorskip("dsrs_gptoss.testing", reason="dsrs-gptoss not installed (llama-server tests)")
from dsrs_gptoss import install  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The ChatAdapter's answer layout, with a short free-text answer the model chooses.
GRAMMAR = r"""root ::= "[[ ## answer ## ]]\n" answer "\n\n[[ ## completed ## ]]"
answer ::= [A-Za-z] [A-Za-z ,.]{0,40}
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Installed plugins this time (dsrs-gptoss's provider); dsrs's cache in a temporary directory."""
    from dsrs._cache import set_cache

    monkeypatch.setenv("DSRS_CACHE_DIR", str(tmp_path / "cache"))
    set_cache(None)
    with isolated_plugins(autoload=True):
        yield
    set_cache(None)


@pytest.fixture(scope="module")
def llama() -> Iterator[Any]:
    model = install.cached_default_model()
    if model is None:
        pytest.skip("SmolLM2 is not in the dsrs cache: run `dsrs-gptoss install` (downloads it once)")
    engine = None
    for kind in gptoss_testing.ENGINES:
        try:
            engine = gptoss_testing.engine(kind)
            break
        except LookupError:
            continue
    if engine is None:
        pytest.skip("no llama.cpp engine here (xllamacpp or a llama-server binary)")
    with gptoss_testing.running_server(model, engine=engine, ctx_size=2048) as server:
        yield server


def test_predict_on_the_local_model_after_failover(llama: Any) -> None:
    local = dsrs.LM("gptoss:smollm2", base_url=llama.base_url, max_tokens=48, temperature=0.0, grammar=GRAMMAR)
    mux = dsrs.LaneMux(retry=dsrs.RetryPolicy(max_attempts=1))
    mux.add_lane("gone", dsrs.LM("openai-compatible:gone", base_url="http://127.0.0.1:9/v1", timeout=2))
    mux.add_lane("local", local)
    dspy_lm = dsrs_dspy.LM(mux)
    with dspy.context(lm=dspy_lm, track_usage=True):
        result = dspy.Predict("question -> answer")(question="What color is the sky?")
    assert isinstance(result.answer, str) and result.answer.strip()
    entry = dspy_lm.history[-1]
    assert entry["dsrs"]["lane"] == "local" and entry["dsrs"]["provider"] == "gptoss"
    assert entry["cost"] == 0 and entry["dsrs"]["cost_msats"] == 0  # local inference: known, free
    usage = result.get_lm_usage()[dspy_lm.model]
    assert usage["prompt_tokens"] > 20 and usage["completion_tokens"] > 3  # counted by llama.cpp


def test_async_chain_of_thought_streams_from_the_local_model(llama: Any) -> None:
    import asyncio

    grammar = GRAMMAR.replace('root ::= "', 'root ::= "[[ ## reasoning ## ]]\\n" answer "\\n\\n')
    lm = dsrs.LM("gptoss:smollm2", base_url=llama.base_url, max_tokens=96, temperature=0.0, grammar=grammar)
    program = dspy.streamify(
        dspy.ChainOfThought("question -> answer"),
        stream_listeners=[dspy.streaming.StreamListener(signature_field_name="answer")],
    )

    async def run() -> tuple[list[str], Any]:
        pieces: list[str] = []
        final = None
        with dspy.context(lm=dsrs_dspy.LM(lm)):
            async for item in program(question="Name a fruit."):
                if isinstance(item, dspy.streaming.StreamResponse):
                    pieces.append(item.chunk)
                elif isinstance(item, dspy.Prediction):
                    final = item
        return pieces, final

    pieces, final = asyncio.run(run())
    assert final is not None and final.reasoning.strip() and final.answer.strip()
    # DSPy's listener may pass the closing "[[ ## completed ## ]]" marker on when the model's tokens
    # split it (DSPy's behaviour, not dsrs's); the answer itself arrives in pieces, in order.
    assert len(pieces) > 1 and "".join(pieces).strip().startswith(final.answer.strip())
