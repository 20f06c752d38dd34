"""dsrs quickstart: find the lanes you have, answer a question with a typed signature.

With no API keys at all this runs on the local lane: llama.cpp's server (the prebuilt engine that
comes with dsrs-gptoss, or your own llama-server) with a small model, started for you (get the model
once with ``dsrs-gptoss install``; ``scripts/demo`` does everything).

    python examples/quickstart.py ["your question"]
"""

from __future__ import annotations

import sys
import time

import dsrs


class QA(dsrs.Signature):
    """Answer the question with a short, factual answer."""

    question: str = dsrs.InputField()
    answer: str = dsrs.OutputField(desc="a few words")


def main(question: str) -> int:
    t0 = time.perf_counter()
    mux = dsrs.LaneMux.auto_detect_sync(timeout=2.0)
    print(mux.describe())
    if not mux.lanes:
        print("\nNo lane is usable. Run `dsrs-gptoss install` for the local one, or set an API key.")
        return 1
    dsrs.configure(mux)
    # The local default model is small (135M parameters): greedy decoding keeps it factual, and a short
    # budget with a blank-line stop keeps it from rambling on after the answer.
    pred = dsrs.Predict(QA, temperature=0, max_tokens=64, stop=["\n\n"])(question=question)
    usage = pred.lm_usage
    detail = usage.detail
    print()
    print(f"question: {question}")
    print(f"answer:   {pred.answer}")
    print(f"lane:     {pred.lane}" + (f" (model file {detail['model_file']})" if "model_file" in detail else ""))
    print(
        f"tokens:   {usage.prompt_tokens} prompt + {usage.completion_tokens} completion = {usage.total_tokens}"
        + (f", {detail['tokens_per_second']:.0f} tokens/s" if "tokens_per_second" in detail else "")
    )
    cost = "unknown" if usage.cost_msats is None else f"{usage.cost_msats} msats (${usage.cost_usd or 0:.6f})"
    print(f"cost:     {cost}")
    print(f"time:     {time.perf_counter() - t0:.1f} s in all (auto-detect, server start if needed, answer)")
    return 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "What is the capital of France?"))
