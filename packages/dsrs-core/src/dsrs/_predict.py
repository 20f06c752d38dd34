"""``dsrs.Predict``: call the configured LM (or LaneMux) with a signature, get typed outputs back.

::

    qa = dsrs.Predict(QA)
    pred = await qa.aforward(question="Capital of France?")
    pred.answer, pred.lm_usage.total_tokens, pred.lm_usage.cost_msats, pred.lane
    qa.forward_with_lane("premium", question="...")     # force a lane (or a tier) of a LaneMux
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dsrs import _settings
from dsrs._adapters.base import AdapterParseError
from dsrs._lm import LM
from dsrs._signatures import Signature, SignatureError, ensure_signature
from dsrs._usage import LmUsage
from dsrs.errors import LMError
from dsrs.types import LMResponse, ToolCall

if TYPE_CHECKING:
    from dsrs._adapters import Adapter
    from dsrs._lanemux.mux import LaneMux
    from dsrs._settings import LanguageModel

__all__ = ["Predict", "Prediction"]

_default_adapter: Adapter | None = None


_mux_class: type[LaneMux] | None = None


def _lanemux_class() -> type[LaneMux]:
    """``LaneMux`` (imported on first use: dsrs._lanemux.mux imports this module's LM)."""
    global _mux_class
    if _mux_class is None:
        from dsrs._lanemux.mux import LaneMux

        _mux_class = LaneMux
    return _mux_class


def _chat_adapter() -> Adapter:
    global _default_adapter
    if _default_adapter is None:
        from dsrs._adapters import ChatAdapter

        _default_adapter = ChatAdapter()
    return _default_adapter


class Prediction:
    """The outputs of one prediction as attributes, plus ``lm_usage``, ``lane`` and ``response``.

    ``lm_usage`` covers every LM call the prediction made (a lane whose answer could not be parsed
    included); ``lane`` is the LaneMux lane that answered (``None`` for a plain LM).
    """

    __slots__ = ("__dict__", "_outputs", "lane", "lm_usage", "response")

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tools the model asked to call (empty when it answered directly)."""
        return self.response.tool_calls if self.response is not None else ()

    def __init__(
        self,
        outputs: Mapping[str, Any],
        *,
        lm_usage: LmUsage | None = None,
        lane: str | None = None,
        response: LMResponse | None = None,
    ) -> None:
        self._outputs = dict(outputs)
        self.__dict__.update(self._outputs)
        self.lm_usage = lm_usage if lm_usage is not None else LmUsage()
        self.lane = lane
        self.response = response

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not outputs (outputs live in __dict__); typed ``Any`` so
        # ``pred.answer`` type-checks.
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"this prediction has no output {name!r}; outputs: {', '.join(self._outputs) or 'none'}")

    def __getitem__(self, name: str) -> Any:
        return self._outputs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def keys(self) -> list[str]:
        return list(self._outputs)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._outputs.items())

    def get(self, name: str, default: Any = None) -> Any:
        return self._outputs.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        """The outputs only."""
        return dict(self._outputs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Prediction):
            return self._outputs == other._outputs
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._outputs.items())
        lane = f", lane={self.lane!r}" if self.lane is not None else ""
        return f"Prediction({fields}{lane})"


class Predict:
    """A predictor for one signature.

    ``lm`` and ``adapter`` override the configured ones (:func:`dsrs.configure`); extra keyword
    arguments are call options sent with every request (``temperature=0``, ``max_tokens=200``...).
    """

    def __init__(
        self,
        signature: type[Signature] | str,
        *,
        lm: LanguageModel | None = None,
        adapter: Adapter | None = None,
        **call_options: Any,
    ) -> None:
        self.signature = ensure_signature(signature)
        self.lm = lm
        self.adapter = adapter
        self.call_options = call_options

    def __repr__(self) -> str:
        return f"Predict({self.signature.__name__})"

    def _resolve(self) -> tuple[LanguageModel, Adapter]:
        s = _settings.current()
        lm = self.lm if self.lm is not None else s.lm
        if lm is None:
            raise _settings.NotConfiguredError(
                "no LM configured: call dsrs.configure(dsrs.LM(...)) or dsrs.configure(mux), "
                "use `with dsrs.context(lm=...)`, or pass Predict(..., lm=...)"
            )
        adapter = self.adapter if self.adapter is not None else s.adapter
        return lm, adapter if adapter is not None else _chat_adapter()

    async def _aforward(self, lane: str | None, inputs: dict[str, Any]) -> Prediction:
        lm, adapter = self._resolve()
        signature = self.signature
        formatted = adapter.format(signature, inputs)
        kwargs = dict(self.call_options)
        if formatted.response_format is not None:
            kwargs["response_format"] = formatted.response_format

        def parse(response: LMResponse) -> dict[str, Any]:
            if response.tool_calls and not response.text.strip():
                # The model asked for tools instead of answering: the calls are the result
                # (``pred.tool_calls``); run them and call again with their results.
                return dict.fromkeys(signature.output_fields)
            if not response.text.strip():
                raise AdapterParseError(
                    f"the model's reply was empty; expected {', '.join(signature.output_fields)}",
                    missing=tuple(signature.output_fields),
                    text=response.text,
                    adapter=type(adapter).__name__,
                )
            return adapter.parse(signature, response.text)

        if isinstance(lm, _lanemux_class()):
            response, outputs, usage = await lm.acall_parsed(formatted.messages, parse, lane=lane, **kwargs)
            return Prediction(outputs, lm_usage=usage, lane=response.lane, response=response)
        if lane is not None:
            raise SignatureError(f"forward_with_lane({lane!r}) needs a dsrs.LaneMux; the configured model is {lm!r}")
        if formatted.response_format is not None and not _supports_response_format(lm):
            del kwargs["response_format"]
        if isinstance(lm, LM):
            response, outputs, _ = await lm.acall_parsed(formatted.messages, parse, **kwargs)
        else:
            response = await lm.acall(formatted.messages, **kwargs)
            try:
                outputs = parse(response)
            except LMError as exc:
                exc.provider = exc.provider or response.provider
                exc.model = exc.model or response.model
                raise
        return Prediction(outputs, lm_usage=response.usage, lane=response.lane, response=response)

    async def aforward(self, **inputs: Any) -> Prediction:
        """Predict the signature's outputs from ``inputs`` on the best available lane."""
        return await self._aforward(None, inputs)

    def forward(self, **inputs: Any) -> Prediction:
        """Sync twin of :meth:`aforward` (works inside a running event loop too)."""
        return _settings.run_sync_with_settings(self._aforward(None, inputs))

    async def aforward_with_lane(self, lane: str, **inputs: Any) -> Prediction:
        """Like :meth:`aforward`, on one LaneMux lane (by name) or tier (``"premium"``), with failover
        only within that tier."""
        return await self._aforward(lane, inputs)

    def forward_with_lane(self, lane: str, **inputs: Any) -> Prediction:
        """Sync twin of :meth:`aforward_with_lane`."""
        return _settings.run_sync_with_settings(self._aforward(lane, inputs))

    async def abatch(
        self,
        inputs: Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 16,
        progress: bool = True,
        return_exceptions: bool = False,
        lane: str | None = None,
    ) -> list[Any]:
        """Predict for every inputs dict, at most ``concurrency`` at a time; predictions in input
        order. When a budget runs out the rest are marked (not run), never lost; with the cache on,
        running the batch again resumes where it stopped. See :mod:`dsrs._batch`."""
        from dsrs._batch import run_batch

        rows = list(inputs)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                from dsrs._validate import InvalidTypeError

                raise InvalidTypeError(f"inputs[{i}]", row, "a dict of the signature's input fields")

        async def one(row: Mapping[str, Any]) -> Prediction:
            return await self._aforward(lane, dict(row))

        return await run_batch(
            rows,
            one,
            usage_of=lambda p: p.lm_usage,
            concurrency=concurrency,
            progress=progress,
            return_exceptions=return_exceptions,
            description=self.signature.__name__,
        )

    def batch(self, inputs: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Any]:
        """Sync twin of :meth:`abatch` (with the caller's settings; works in a running loop)."""
        return _settings.run_sync_with_settings(self.abatch(inputs, **kwargs))

    __call__ = forward
    acall = aforward


def _supports_response_format(lm: LanguageModel) -> bool:
    return bool(getattr(lm, "supports_response_format", False))
