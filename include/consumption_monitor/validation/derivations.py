"""Derived check columns that the JSON suites test.

Great Expectations' built-in expectations cannot compute a USCC check character or compare
a batch with the previous period in the warehouse. Rather than custom expectation classes,
each such fact is computed here into a ``_``-prefixed column, and the suite checks that
column with a plain built-in expectation. The spec's ``derive`` list says which apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from consumption_monitor.identifiers import is_uscc_well_formed, is_valid_uscc


@dataclass
class DeriveContext:
    period: str
    frames: dict[str, pd.DataFrame]  # every stream of the batch, typed
    previous: dict[str, pd.DataFrame] = field(default_factory=dict)  # prior period, current
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)


Derivation = Callable[[pd.DataFrame, str, DeriveContext], pd.DataFrame]
REGISTRY: dict[str, Derivation] = {}


def derivation(name: str) -> Callable[[Derivation], Derivation]:
    def register(fn: Derivation) -> Derivation:
        REGISTRY[name] = fn
        return fn

    return register


def apply(
    names: tuple[str, ...], frame: pd.DataFrame, stream: str, ctx: DeriveContext
) -> pd.DataFrame:
    for name in names:
        if name not in REGISTRY:
            raise KeyError(f"unknown derivation {name!r} (known: {sorted(REGISTRY)})")
        frame = REGISTRY[name](frame, stream, ctx)
    return frame


@derivation("uscc_check")
def uscc_check(frame: pd.DataFrame, stream: str, ctx: DeriveContext) -> pd.DataFrame:
    """``_uscc_check_ok``: the 18th character matches (null when the code is malformed)."""
    if "uscc" not in frame:
        return frame
    frame["_uscc_check_ok"] = pd.array(
        [is_valid_uscc(v) if is_uscc_well_formed(v) else None for v in frame["uscc"]],
        dtype="boolean",
    )
    return frame


def _gap_pct(expected: pd.Series, actual: pd.Series) -> pd.Series:
    """Relative gap in percent; null where either side is missing or the base is zero."""
    base = actual.where(actual.abs() > 0)
    return ((expected - actual) / base * 100).round(6)


@derivation("ytd_continuity")
def ytd_continuity(frame: pd.DataFrame, stream: str, ctx: DeriveContext) -> pd.DataFrame:
    """``_ytd_gap_pct``: previous period's YTD + this month vs this YTD, in percent.

    Null when not applicable (February opens the year's published series) or when the
    previous period is not in the warehouse yet (a backfill in any order stays valid).
    """
    frame["_ytd_gap_pct"] = pd.Series([None] * len(frame), index=frame.index, dtype="float64")
    month = int(ctx.period[5:7])
    previous = ctx.previous.get(stream)
    needed = {"value_month", "value_ytd"}
    if month <= 2 or previous is None or previous.empty or not needed <= set(frame.columns):
        return frame
    keys = [k for k in ctx.keys.get(stream, ()) if k != "period"]
    prior = previous[[*keys, "value_ytd"]].rename(columns={"value_ytd": "_prev_ytd"})
    merged = frame[keys].merge(prior, on=keys, how="left")
    merged.index = frame.index
    expected = merged["_prev_ytd"].astype("float64") + frame["value_month"].astype("float64")
    frame["_ytd_gap_pct"] = _gap_pct(expected, frame["value_ytd"].astype("float64"))
    return frame


@derivation("above_quota_components")
def above_quota_components(frame: pd.DataFrame, stream: str, ctx: DeriveContext) -> pd.DataFrame:
    """``_components_gap_pct`` on the 限额以上 row: Σ enterprise YTD vs the published total."""
    frame["_components_gap_pct"] = pd.Series(
        [None] * len(frame), index=frame.index, dtype="float64"
    )
    units = ctx.frames.get("above_quota")
    if units is None or "value_ytd" not in units or "indicator_code" not in frame:
        return frame
    total = float(units["value_ytd"].astype("float64").sum(skipna=True))
    mask = frame["indicator_code"] == "retail_above_quota"
    expected = pd.Series(total, index=frame.index, dtype="float64")
    gap = _gap_pct(expected, frame["value_ytd"].astype("float64"))
    frame.loc[mask, "_components_gap_pct"] = gap[mask]
    return frame
