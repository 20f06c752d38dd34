"""``dsrs ask``: one question to the best lane ``LaneMux.auto_detect`` finds (or a given model/lane).

The prompt is the arguments, stdin, or both (stdin first, then the arguments). The answer streams
to stdout as it arrives (``--no-stream`` waits for it whole); one line of tokens and cost goes to
stderr. Which model answers:

1. ``--model`` (with ``--base-url`` for any OpenAI-compatible server);
2. ``--lane NAME``: that provider, if ``auto_detect`` finds it configured and reachable;
3. ``$DSRS_MODEL``;
4. every lane ``auto_detect`` finds, premium first, with failover;
5. ``fake:echo`` when nothing is reachable, and stderr says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from dsrs._cli._exit import UsageError
from dsrs._cli._output import print_json, read_stdin

__all__ = ["add_ask", "cmd_ask"]

FALLBACK_MODEL = "fake:echo"


def add_ask(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="*", help="the question (else read from stdin; both: stdin, then this)")
    p.add_argument("-s", "--system", default=None, help="system prompt")
    p.add_argument("-m", "--model", default=None, help="model string, e.g. openai:gpt-4o-mini (default: auto-detect)")
    p.add_argument("--lane", default=None, help="use only this provider's lane, as auto_detect finds it")
    p.add_argument("--base-url", default=None, help="server base URL for --model (any OpenAI-compatible server)")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--timeout", type=float, default=2.0, help="provider probe timeout in seconds (default 2)")
    p.add_argument(
        "--budget-msats",
        type=int,
        default=None,
        help="refuse (exit 5) a call that could cost more than this many msats",
    )
    stream = p.add_mutually_exclusive_group()
    stream.add_argument("--stream", dest="stream", action="store_true", default=True, help=argparse.SUPPRESS)
    stream.add_argument("--no-stream", dest="stream", action="store_false", help="print the answer when complete")
    p.add_argument("--json", action="store_true", help="print the whole response and usage as JSON (no streaming)")
    p.add_argument("-q", "--quiet", action="store_true", help="no tokens/cost line on stderr")


def _prompt(args: argparse.Namespace) -> list[dict[str, str]]:
    stdin = read_stdin("the prompt")
    parts = [t for t in (stdin.strip() if stdin else "", " ".join(args.prompt).strip()) if t]
    if not parts:
        raise UsageError("no prompt: give it as an argument (dsrs ask 'hello') or on stdin (echo hello | dsrs ask)")
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": "\n\n".join(parts)})
    return messages


async def _target(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The LM or LaneMux to ask (see the module docstring for the order) and the call's options."""
    import dsrs

    options = {k: v for k, v in (("max_tokens", args.max_tokens), ("temperature", args.temperature)) if v is not None}
    budget = args.budget_msats
    if budget is not None and budget < 0:
        raise UsageError(f"--budget-msats must be >= 0, got {budget}")
    mux_options = {} if budget is None else {"budget_msats": budget}
    if args.model:
        if args.lane:
            raise UsageError("give --model or --lane, not both")
        lm = dsrs.LM(args.model, base_url=args.base_url)
        # A budget is a LaneMux's: one lane, the given model.
        return (lm if budget is None else dsrs.LaneMux(**mux_options).add_lane(lm.provider_name, lm)), options
    if args.base_url:
        raise UsageError("--base-url needs --model (e.g. --model openai-compat:my-model)")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0, got {args.timeout:g}")
    if args.lane:
        names = [s.name for s in dsrs.providers()]
        if args.lane not in names:
            raise UsageError(f"--lane {args.lane!r}: no such provider; installed: {', '.join(names)}")
        mux = await dsrs.LaneMux.auto_detect(args.timeout, include=[args.lane], **mux_options)
        if not mux.lane_names:
            report = mux.probes[0] if mux.probes else None
            why = report.describe() if report is not None else "not found"
            raise UsageError(f"--lane {args.lane!r} is not usable: {why} (see `dsrs providers`)")
        return mux, options
    env_model = os.environ.get("DSRS_MODEL")
    if env_model:
        lm = dsrs.LM(env_model)
        return (lm if budget is None else dsrs.LaneMux(**mux_options).add_lane(lm.provider_name, lm)), options
    mux = await dsrs.LaneMux.auto_detect(args.timeout, **mux_options)
    if mux.lane_names:
        return mux, options
    print(
        f"dsrs: no provider is configured and reachable (see `dsrs providers`); answering with {FALLBACK_MODEL},"
        " which only echoes the prompt",
        file=sys.stderr,
    )
    lm = dsrs.LM(FALLBACK_MODEL)
    return (lm if budget is None else dsrs.LaneMux(**mux_options).add_lane("fake", lm)), options


async def _ask(args: argparse.Namespace, messages: list[dict[str, str]]) -> Any:
    # One event loop for probes, the call and the stream, shut down by asyncio.run: connections
    # and generators are closed before the interpreter exits, never finalized during its shutdown.
    target, options = await _target(args)
    if not (args.stream and not args.json):
        return await target.acall(messages, **options)
    stream = target.astream(messages, **options)
    last = "\n"
    async for delta in stream:
        if delta:
            sys.stdout.write(delta)
            sys.stdout.flush()
            last = delta
    if not last.endswith("\n"):
        sys.stdout.write("\n")
    if stream.response is None:  # pragma: no cover - a finished stream always has its response
        raise RuntimeError("the stream ended without a response")
    return stream.response


def cmd_ask(args: argparse.Namespace) -> int:
    messages = _prompt(args)
    response = asyncio.run(_ask(args, messages))
    if args.json:
        print_json(response.to_dict())
        return 0
    if not args.stream:
        print(response.text)
    if not args.quiet:
        print(_summary(response), file=sys.stderr)
    return 0


def _summary(response: Any) -> str:
    u = response.usage
    cost = "unknown" if u.cost_msats is None else f"{u.cost_msats} msats (${u.cost_usd:.6f})"
    lane = f" lane {response.lane}" if response.lane else ""
    return (
        f"-- {response.provider}:{response.model}{lane}  tokens {u.prompt_tokens} in / {u.completion_tokens} out"
        f" / {u.total_tokens} total  cost {cost}{'  (cache hit)' if u.cache_hit else ''}"
    )
