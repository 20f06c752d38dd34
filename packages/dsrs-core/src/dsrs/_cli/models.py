"""``dsrs models``: the models each provider offers, with price and where the price comes from.

Sources of model names: the provider's default model (``default``); for providers speaking the
OpenAI wire that are configured, the server's live ``GET /models`` list (``live``); and with
``--provider`` or ``--all``, the models genai-prices' bundled snapshot lists for that provider
(``catalog``; deprecated ones only with ``--all``), when the ``prices`` extra is installed. Prices are asked
of the ``dsrs_cost`` hook (the packages' tables, then genai-prices), per million tokens, at a
prompt small enough to stay below any long-context tier; ``price_source`` says which table priced it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dsrs._cli._exit import UsageError
from dsrs._cli._output import print_json, safe

__all__ = ["add_models", "cmd_models", "list_models"]

#: A live list longer than this is cut (a hostile or huge server must not flood the table).
MAX_LIVE_MODELS = 5000
_PROBE_TOKENS = 1000


def add_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", "-p", default=None, help="only this provider")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=3.0, help="timeout of each live /models request (default 3)")
    p.add_argument("--no-live", action="store_true", help="do not ask servers for their /models list")
    p.add_argument(
        "--all", action="store_true", help="every provider's catalog too (genai-prices), deprecated models included"
    )


async def _live(spec: Any, timeout: float) -> tuple[list[str], str]:
    """The server's model ids and a note on how that went."""
    from dsrs import _json
    from dsrs.transport import HttpRequest, TransportError, get_transport
    from dsrs.wire import OpenAICompatibleProvider, env_first

    try:
        cls = spec.load()
    except Exception as exc:
        return [], f"cannot import: {type(exc).__name__}"
    if not (isinstance(cls, type) and issubclass(cls, OpenAICompatibleProvider)):
        return [], "no live listing for this wire"
    key = env_first(tuple(getattr(cls, "api_key_env", ())))
    if getattr(cls, "requires_api_key", False) and not key:
        return [], "not configured"
    base = env_first(tuple(getattr(cls, "base_url_env", ()))) or getattr(cls, "default_base_url", None)
    if not base:
        return [], "not configured"
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        resp = await get_transport().send(HttpRequest("GET", cls.probe_url(base), headers, None, timeout))
    except TransportError as exc:
        return [], f"unreachable ({type(exc).__name__})"
    if resp.status in (401, 403):
        return [], f"key rejected (HTTP {resp.status})"
    if not resp.ok:
        return [], f"HTTP {resp.status}"
    try:
        data: Any = _json.loads(resp.content)
    except ValueError:
        return [], "the /models answer is not JSON"
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], "the /models answer has no 'data' list"
    ids = [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str) and 0 < len(i["id"]) <= 200]
    skipped = len(items) - len(ids)
    note = "ok" + (f"; {skipped} entries without a usable id skipped" if skipped else "")
    if len(ids) > MAX_LIVE_MODELS:
        note += f"; first {MAX_LIVE_MODELS} of {len(ids)} shown"
        ids = ids[:MAX_LIVE_MODELS]
    return ids, note


def _price(provider: str, model: str) -> dict[str, Any]:
    from dsrs._usage import LmUsage
    from dsrs.plugins._manager import get_host

    hooks = get_host().hooks
    canonical = f"{provider}:{model}"
    per_m = 1_000_000 / _PROBE_TOKENS

    def usd(prompt: int, completion: int) -> float | None:
        cost = hooks.cost(canonical, LmUsage.from_tokens(prompt, completion))
        value = cost.resolved().usd if cost is not None else None
        return None if value is None else round(value * per_m, 6)

    row: dict[str, Any] = {"input_usd_per_mtok": usd(_PROBE_TOKENS, 0), "output_usd_per_mtok": usd(0, _PROBE_TOKENS)}
    try:
        from dsrs._prices import price_source
    except ImportError:  # pragma: no cover - an older core without the genai-prices fallback
        return row
    known = row["input_usd_per_mtok"] is not None or row["output_usd_per_mtok"] is not None
    row["price_source"] = price_source(provider, model) if known else None
    return row


def _catalog(provider: str, *, deprecated: bool) -> list[str]:
    """The model ids genai-prices' bundled snapshot lists for ``provider`` (empty without the extra)."""
    from dsrs import _prices

    provider_id = _prices.GENAI_PRICES_PROVIDERS.get(provider)
    if provider_id is None or not _prices.genai_prices_available():
        return []
    import genai_prices

    try:
        snapshot = genai_prices.data_snapshot.get_snapshot()
        entry = next((p for p in snapshot.providers if p.id == provider_id), None)
        models = list(entry.models) if entry is not None else []
        return [m.id for m in models if isinstance(m.id, str) and (deprecated or not getattr(m, "deprecated", False))]
    except Exception:  # another genai-prices version's layout: no catalog rather than a crash
        return []


async def list_models(
    provider: str | None, *, timeout: float, live: bool, catalog: bool = False, deprecated: bool = False
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Model rows and, per provider, what its live listing said."""
    import dsrs

    specs = dsrs.providers()
    if provider is not None:
        specs = [s for s in specs if s.name == provider]
        if not specs:
            names = ", ".join(s.name for s in dsrs.providers())
            raise UsageError(f"--provider {provider!r}: no such provider; installed: {names}")
    results = await asyncio.gather(*(_live(s, timeout) if live else _none() for s in specs))
    rows: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    for spec, (ids, note) in zip(specs, results, strict=True):
        notes[spec.name] = note
        sources: dict[str, list[str]] = {}
        if spec.default_model:
            sources.setdefault(spec.default_model, []).append("default")
        for model_id in ids:
            sources.setdefault(model_id, []).append("live")
        if catalog:
            for model_id in _catalog(spec.name, deprecated=deprecated):
                sources.setdefault(model_id, []).append("catalog")
        for model, where in sources.items():
            rows.append({"provider": spec.name, "model": model, "sources": where, **_price(spec.name, model)})
    return rows, notes


async def _none() -> tuple[list[str], str]:
    return [], "not asked (--no-live)"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def cmd_models(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0, got {args.timeout:g}")
    rows, notes = asyncio.run(
        list_models(
            args.provider,
            timeout=args.timeout,
            live=not args.no_live,
            catalog=args.all or args.provider is not None,
            deprecated=args.all,
        )
    )
    if args.json:
        print_json(rows)
        return 0
    width = max([len(f"{r['provider']}:{r['model']}") for r in rows] + [5])
    print(f"{'model':<{width}}  {'$/M in':>9}  {'$/M out':>9}  {'price from':<14}  listed by")
    for r in rows:
        name = safe(f"{r['provider']}:{r['model']}", newlines=False)
        source = r.get("price_source") or "-"
        print(
            f"{name:<{width}}  {_money(r['input_usd_per_mtok']):>9}  {_money(r['output_usd_per_mtok']):>9}"
            f"  {source:<14}  {', '.join(r['sources'])}"
        )
    failed = {p: n for p, n in notes.items() if n not in ("ok", "not configured", "no live listing for this wire")}
    for p, n in failed.items():
        if not n.startswith("not asked"):
            print(f"note: {p}: live /models {n}", file=sys.stderr)
    return 0
