"""The registry of derivations: named functions that add ``_``-prefixed check columns.

Great Expectations' built-in expectations cannot compute a USCC check character or compare
a batch with the previous period in the warehouse. Rather than custom expectation classes,
each such fact is computed by a derivation into a ``_``-prefixed column, and the suite
checks that column with a plain built-in expectation. The spec's ``derive`` list says which
apply to a stream.

Derivations register themselves with :func:`derivation` in their own modules: the generic
ones in :mod:`~consumption_monitor.validation.derivations`, the trade-in rules in
:mod:`~consumption_monitor.validation.tradein`. Those modules import this one, never the
other way round; :mod:`~consumption_monitor.validation.runner`, the one place that applies
derivations, imports them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from consumption_monitor.feeds.spec import DeriveSpec


@dataclass
class DeriveContext:
    period: str
    frames: dict[str, pd.DataFrame]  # every stream of the batch, typed
    previous: dict[str, pd.DataFrame] = field(default_factory=dict)  # prior period, current
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)


Derivation = Callable[..., pd.DataFrame]  # (frame, stream, ctx, **params from the spec)
REGISTRY: dict[str, Derivation] = {}
# What a derivation reads and writes, as column names or functions of the spec's
# parameters. ``<stream>.<column>`` reads another stream of the batch. Used to trace a
# failed check on a ``_`` column back to a missing or unreadable input (causes.py).
Columns = Sequence[str] | Callable[..., Iterable[str]]
DECLARED: dict[str, tuple[Columns, Columns]] = {}


def derivation(
    name: str, *, inputs: Columns = (), outputs: Columns = ()
) -> Callable[[Derivation], Derivation]:
    def register(fn: Derivation) -> Derivation:
        REGISTRY[name] = fn
        DECLARED[name] = (inputs, outputs)
        return fn

    return register


def _resolve(columns: Columns, params: dict[str, Any]) -> tuple[str, ...]:
    return tuple(columns(**params) if callable(columns) else columns)


def derived_inputs(steps: Iterable[DeriveSpec | str]) -> dict[str, set[str]]:
    """Each derived column of the steps -> the columns it is computed from (as declared)."""
    out: dict[str, set[str]] = {}
    for step in steps:
        spec = DeriveSpec(step) if isinstance(step, str) else step
        inputs, outputs = DECLARED.get(spec.name, ((), ()))
        for column in _resolve(outputs, spec.kwargs):
            out.setdefault(column, set()).update(_resolve(inputs, spec.kwargs))
    return out


def apply(
    steps: Iterable[DeriveSpec | str], frame: pd.DataFrame, stream: str, ctx: DeriveContext
) -> pd.DataFrame:
    for step in steps:
        spec = DeriveSpec(step) if isinstance(step, str) else step
        if spec.name not in REGISTRY:
            raise KeyError(f"unknown derivation {spec.name!r} (known: {sorted(REGISTRY)})")
        frame = REGISTRY[spec.name](frame, stream, ctx, **spec.kwargs)
    return frame
