"""dsrs-core's own plugin, loaded through the ``dsrs`` entry-point group like any other.

Registers the fake provider and the generic OpenAI-compatible provider, prices ``fake:`` calls,
and prices models no package table lists from genai-prices (``dsrs._prices``, asked last).
Failures of the OpenAI chat wire are classified by its codec (``OpenAIChatCodec.classify``).
Its usage sink records every call in the local ledger (``dsrs._ledger``) and, when enabled, the
prompt log (``dsrs._calllog``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dsrs._provider import ProviderSpec
from dsrs._usage import Cost, LmUsage, UsageRecord
from dsrs.plugins import hookimpl, prices


@hookimpl
def dsrs_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="fake",
            factory="dsrs._builtin.fake:FakeProvider",
            tier="local",
            default_model="echo",
            env_vars=("DSRS_FAKE_LANE",),
            description="deterministic test provider (fake:echo, fake:script)",
            priority=-100,
        )
    )
    register(
        ProviderSpec(
            name="openai-compatible",
            factory="dsrs._builtin.openai_compatible:GenericOpenAICompatibleProvider",
            prefixes=("openai-compat",),
            tier="local",
            env_vars=("OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY"),
            description="any OpenAI-compatible server given by base_url",
            priority=-50,
        )
    )


@hookimpl
@prices("fake")
def dsrs_cost(model: str, usage: LmUsage) -> Cost | None:
    if model.startswith("fake:"):
        from dsrs._builtin.fake import fake_cost

        return fake_cost(usage)
    return None


# (dsrs provider names genai-prices knows, its pricing function): imported on the first priced call
# (an import statement per call cost ~2 µs).
_genai_prices: tuple[Mapping[str, str], Callable[[str, LmUsage], Cost | None]] | None = None


@hookimpl(specname="dsrs_cost", trylast=True)
def dsrs_cost_from_genai_prices(model: str, usage: LmUsage) -> Cost | None:
    """The fallback price from genai-prices' bundled data, asked only after every package table."""
    global _genai_prices
    if _genai_prices is None:
        from dsrs._prices import GENAI_PRICES_PROVIDERS, genai_prices_cost

        _genai_prices = (GENAI_PRICES_PROVIDERS, genai_prices_cost)
    providers, price = _genai_prices
    if model.partition(":")[0] not in providers:  # a local server, an OpenAI-compatible endpoint, ...
        return None
    return price(model, usage)


@hookimpl
def dsrs_usage_recorded(record: UsageRecord) -> None:
    """Every call into the local ledger (``DSRS_LEDGER=0``: off) and, when enabled, the prompt log."""
    # Imported here, not with the plugin: ``import dsrs`` + ``providers()`` then loads no sqlite3
    # or logging (~20 ms). The LM's own shortcut to the ledger skips this function altogether.
    from dsrs import _calllog, _ledger

    _ledger.record_usage(record)
    if _calllog.enabled():
        _calllog.record_call(record)
