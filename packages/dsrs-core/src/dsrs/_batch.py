"""Batches: run many calls with bounded concurrency, in input order, with progress.

``Predict.batch``, ``LM.batch`` and ``LaneMux.batch`` (and their ``abatch`` twins) share
:func:`run_batch`: a fixed pool of ``concurrency`` workers pulls items in order, so 10,000 items
never mean 10,000 tasks. Results come back in input order. When a budget runs out, no new item
starts: the items not run are marked with a :class:`BudgetExceededError` (``not_run=True``) and
kept, never dropped. With the cache on, running the same batch again answers the finished items
from the cache (free) and goes on with the rest.

Progress: a bar on stderr when it is a terminal (tqdm when installed —
``pip install 'dsrs-core[progress]'`` — else a one-line counter), showing done, failed, tokens and
msats; nothing at all when stderr is not a terminal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from dsrs._usage import LmUsage
from dsrs.errors import BudgetExceededError, LMError

__all__ = ["BatchError", "BatchProgress", "run_batch"]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - item type


class BatchError(LMError, Generic[T]):
    """Some items of a batch failed (``return_exceptions=False``). ``results`` holds every item's
    outcome in input order — values for the items that answered, the exception for the others —
    so nothing already paid for is lost."""

    def __init__(self, results: list[T | BaseException], errors: list[tuple[int, BaseException]]) -> None:
        self.results = results
        self.errors = errors
        first = errors[0][1]
        super().__init__(
            f"{len(errors)} of {len(results)} batch items failed; first (item {errors[0][0]}): "
            f"{type(first).__name__}: {first}"
        )


class BatchProgress:
    """Counts shown while a batch runs (and returned on ``BatchError`` / kept by callers)."""

    def __init__(self, total: int, *, enabled: bool, description: str) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.usage = LmUsage()
        self._bar: Any = None
        self._line = False
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=description, unit="item", leave=True, file=sys.stderr)
            except ImportError:
                self._line = True

    def update(self, usage: LmUsage | None, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        if usage is not None:
            self.usage = self.usage + usage
        cost = self.usage.cost_msats
        stats = f"failed={self.failed} tokens={self.usage.total_tokens} msats={'?' if cost is None else cost}"
        if self._bar is not None:
            self._bar.set_postfix_str(stats, refresh=False)
            self._bar.update(1)
        elif self._line:
            sys.stderr.write(f"\r{self.done}/{self.total} {stats}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._line and self.done < self.total:
            sys.stderr.write("\n")


def _not_run(exc: BudgetExceededError) -> BudgetExceededError:
    err = BudgetExceededError(
        f"not run: the budget was exhausted ({exc.message})", provider=exc.provider, model=exc.model
    )
    err.not_run = True  # type: ignore[attr-defined]
    return err


async def run_batch(
    items: Sequence[I],
    call: Callable[[I], Awaitable[T]],
    *,
    usage_of: Callable[[T], LmUsage | None],
    concurrency: int = 16,
    progress: bool = True,
    return_exceptions: bool = False,
    description: str = "dsrs batch",
) -> list[T | BaseException]:
    """``call`` on every item with at most ``concurrency`` in flight; results in input order."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        from dsrs._validate import InvalidValueError

        raise InvalidValueError("concurrency", concurrency, "an int >= 1")
    items = list(items)
    results: list[Any] = [None] * len(items)
    errors: list[tuple[int, BaseException]] = []
    bar = BatchProgress(len(items), enabled=progress, description=description)
    next_index = 0
    exhausted: BudgetExceededError | None = None

    async def worker() -> None:
        nonlocal next_index, exhausted
        while next_index < len(items):
            i = next_index
            next_index += 1
            if exhausted is not None:
                results[i] = _not_run(exhausted)
                errors.append((i, results[i]))
                bar.update(None, failed=True)
                continue
            try:
                value = await call(items[i])
            except (LMError, ValueError, TypeError) as exc:
                if isinstance(exc, BudgetExceededError) and exhausted is None:
                    exhausted = exc
                results[i] = exc
                errors.append((i, exc))
                bar.update(None, failed=True)
                continue
            results[i] = value
            bar.update(usage_of(value), failed=False)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(items))))))
    finally:
        bar.close()
    if errors and not return_exceptions:
        errors.sort(key=lambda e: e[0])
        raise BatchError(results, errors)
    return results
