"""The generic derivations: check columns any feed's spec may ask for in ``derive``.

Registered in :mod:`~consumption_monitor.validation.derivation_registry` (which explains
derivations); feed-specific ones live beside their feed's rules (trade-in:
:mod:`~consumption_monitor.validation.tradein`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from consumption_monitor.common.identifiers import is_uscc_well_formed, is_valid_uscc
from consumption_monitor.common.periods import Period
from consumption_monitor.validation.derivation_registry import DeriveContext, derivation


@derivation("uscc_check", inputs=("uscc",), outputs=("_uscc_check_ok",))
def uscc_check(frame: pd.DataFrame, stream: str, ctx: DeriveContext) -> pd.DataFrame:
    """``_uscc_check_ok``: the 18th character matches (null when the code is malformed)."""
    if "uscc" not in frame:
        return frame
    # a few hundred enterprises make millions of transactions: check each code once. The
    # values are taken as a list (``tolist``): iterating an Arrow-backed text column goes
    # value by value through pandas, several times slower.
    codes = frame["uscc"].tolist()
    checked = {
        v: (is_valid_uscc(v) if is_uscc_well_formed(v) else None)
        for v in set(codes)
        if isinstance(v, str)
    }
    frame["_uscc_check_ok"] = pd.array(
        [checked[v] if isinstance(v, str) else None for v in codes], dtype="boolean"
    )
    return frame


def _gap_pct(expected: pd.Series, actual: pd.Series) -> pd.Series:
    """Relative gap in percent; null where either side is missing or the base is zero."""
    base = actual.where(actual.abs() > 0)
    return ((expected - actual) / base * 100).round(6)


@derivation("ytd_continuity", inputs=("value_month", "value_ytd"), outputs=("_ytd_gap_pct",))
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


@derivation(
    "above_quota_components",
    inputs=("indicator_code", "value_ytd", "above_quota.value_ytd"),
    outputs=("_components_gap_pct",),
)
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


def _empty(frame: pd.DataFrame, dtype: str) -> pd.Series:
    return pd.Series(pd.array([None] * len(frame), dtype=dtype), index=frame.index)


@derivation(
    "ytd_monotonic",
    inputs=lambda columns: columns,
    outputs=("_ytd_monotonic_ok",),
)
def ytd_monotonic(
    frame: pd.DataFrame, stream: str, ctx: DeriveContext, columns: list[str]
) -> pd.DataFrame:
    """``_ytd_monotonic_ok``: every listed year-to-date column is ≥ its value in the previous
    period of the same year (matched on the stream's keys other than the period).

    For series published year-to-date only (NBS online retail) continuity cannot be checked
    as "previous YTD + month", but a cumulative figure can never fall within a year. Null
    where not applicable: the first period of a year, the previous period not in the
    warehouse yet (a backfill in any order stays valid), or a value missing on either side.
    """
    frame["_ytd_monotonic_ok"] = _empty(frame, "boolean")
    previous = ctx.previous.get(stream)
    present = [c for c in columns if c in frame.columns]
    period = Period.parse(ctx.period)
    if period.shift(-1).year != period.year or previous is None or previous.empty or not present:
        return frame
    keys = [k for k in ctx.keys.get(stream, ()) if k != "period"]
    prior = previous[[*keys, *present]].rename(columns={c: f"_prev_{c}" for c in present})
    merged = frame[keys].merge(prior, on=keys, how="left")
    merged.index = frame.index
    ok = pd.Series(True, index=frame.index)
    known = pd.Series(True, index=frame.index)
    for column in present:
        now = frame[column].astype("float64")
        before = merged[f"_prev_{column}"].astype("float64")
        known &= now.notna() & before.notna()
        ok &= now >= before
    frame["_ytd_monotonic_ok"] = pd.array(
        [bool(o) if k else None for o, k in zip(ok, known, strict=True)], dtype="boolean"
    )
    return frame


@derivation(
    "date_in_period",
    inputs=lambda column: (column,),
    outputs=lambda column: (f"_{column}_in_period",),
)
def date_in_period(
    frame: pd.DataFrame, stream: str, ctx: DeriveContext, column: str
) -> pd.DataFrame:
    """``_<column>_in_period``: the ISO date lies in the batch's period (events of a month,
    cases received in a month). Null where the date is missing or did not parse."""
    out = f"_{column}_in_period"
    frame[out] = _empty(frame, "boolean")
    if column not in frame:
        return frame
    values: list[Any] = [
        None if not isinstance(v, str) else v[:7] == ctx.period for v in frame[column].tolist()
    ]
    frame[out] = pd.array(values, dtype="boolean")
    return frame
