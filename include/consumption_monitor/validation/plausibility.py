"""Plausibility rules (核实性审核) across periods, as data beside the suites.

A suite judges one batch alone; these rules judge a batch against the loaded history of the
same entity (enterprise, platform, unit, district indicator), as national enterprise
reporting (联网直报) does with its 核实性审核 and Statistics Netherlands' ``validate`` does
with rules across versions of a data set. Each stream may have a rules file
``expectations/<table>.rules.yaml`` (``entity``: the columns naming who a row is about;
``label``: the column that names it for people; ``rules``: a list). Rule kinds:

- ``unit_slip``: a value against the median of the entity's last ``months`` loaded periods
  (the same month a year earlier is one of them); a ratio ≥ ``ratio`` or ≤ 1/``ratio``
  is a suspected 元/万元 slip (10,000×).
- ``hb_edit``: the Hidiroglou–Berthelot edit on current/previous ratios of an
  enterprise-level column: centred ratios, size-weighted by max(current, previous)^``u``,
  bounds ``median ∓ c × max(quartile distance, |a × median|)``; ``min_ratio_change``
  spares ratios within that share of the median ratio (year-to-date ratios of healthy
  enterprises are so alike that the quartile distances alone flag a 1.53 against 1.46).
- ``growth_bands``: an entity's month against the same month a year earlier
  (``yoy_ratio``) and the month before (``mom_ratio``), both ways.
- ``published_yoy``: |published YoY| above ``max_abs_pct``, and the published YoY against
  the YoY implied by the levels, more than ``max_gap_points`` apart (published rates are on
  a comparable basis, so the gap is wide by design).
- ``bounds``: absolute ``min``/``max`` of a value (no history needed).

Every rule has a ``severity`` and follows the severity policy of the suites: a ``critical``
finding quarantines its rows and (unless ``mostly`` tolerates it) rejects the batch; a
``warning`` loads and is recorded. An entity that has no history for a rule is listed as
无历史数据，未检查 in an ``info`` outcome of its own: never counted as passed, never a
warning. History is read in one place, :func:`history.entity_history`.

Measured 2026-11-30 with ``cm run`` over every sample period (2024-01 .. 2026-10, 130
batches of the four feeds with rules): no critical finding, 17 warnings, all HB outliers
(3 above-quota: one car dealer; 14 platform sales: one grape grower in its harvest months).
Without a floor, HB with c = 10 flagged 56 above-quota and 9 platform findings: healthy
enterprises' YTD ratios differ by hundredths, so the quartile distances are tiny and a
1.53 against 1.46 is "out"; with the floor ``min_ratio_change`` (0.3 for YTD, 0.5 for the
monthly platform sales) and c = 4 it is 3 and 14.
History costs one indexed query per stream and batch (the 24 months before the period).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from consumption_monitor.common import config
from consumption_monitor.common.periods import Period
from consumption_monitor.feeds.frames import ROW
from consumption_monitor.feeds.spec import StreamSpec
from consumption_monitor.validation.history import entity_history

if TYPE_CHECKING:
    from sqlalchemy import Engine

RULES_SUFFIX = ".rules.yaml"
INDEX_BASE = 1000  # outcome indexes of rules start here (suites use the low numbers)
SEVERITIES = ("critical", "warning")
UNCHECKED = "plausibility_unchecked"
SAMPLE = 10


class RulesError(ValueError):
    """A rules file that cannot be used."""


@dataclass(frozen=True)
class Finding:
    """One entity (or row) a rule flags: who, what, and the rows concerned."""

    entity: str
    label: str
    message: str
    rows: list[int]
    value: float | None = None
    reference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "label": self.label,
            "message": self.message,
            "rows": self.rows,
            "value": self.value,
            "reference": self.reference,
        }


@dataclass
class RuleResult:
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0  # entities (or rows) the rule could judge
    unchecked: list[str] = field(default_factory=list)  # labels of entities without history
    values: int = 0  # rows with a value (the base of ``mostly``)


@dataclass(frozen=True)
class RuleSet:
    table: str
    entity: list[str]
    label: str | None
    rules: list[dict[str, Any]]
    lookback_months: int = 24


@dataclass
class Context:
    """A stream's batch and its history, each row with its entity key and label."""

    stream: StreamSpec
    period: str
    current: pd.DataFrame
    history: pd.DataFrame

    def describe(self, column: str) -> str:
        col = self.stream.column(column)
        return col.label or col.description or column

    def unit(self, column: str) -> str:
        return self.stream.column(column).unit or ""


def rules_path(table: str, directory: Path | None = None) -> Path:
    return (directory or config.expectations_dir()) / f"{table}{RULES_SUFFIX}"


def _columns_of(rule: dict[str, Any]) -> list[str]:
    names = [rule[k] for k in ("column", "value", "yoy") if k in rule]
    return [*names, *rule.get("columns", [])]


def load_rules(stream: StreamSpec, directory: Path | None = None) -> RuleSet | None:
    """The stream's rules, checked against its spec; None when it has no rules file."""
    path = rules_path(stream.table, directory)
    if not path.exists():
        return None
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    known = set(stream.column_names)
    entity = list(doc.get("entity") or [])
    label = doc.get("label")
    for i, rule in enumerate(doc.get("rules") or []):
        where = f"{path.name}: rule #{i} ({rule.get('rule')})"
        if rule.get("rule") not in RULES:
            raise RulesError(f"{where}: unknown rule (known: {sorted(RULES)})")
        if rule.get("severity") not in SEVERITIES:
            raise RulesError(f"{where}: severity must be one of {SEVERITIES}")
        if not rule.get("description"):
            raise RulesError(f"{where}: needs a description")
        missing = [c for c in [*_columns_of(rule), *entity] if c not in known]
        if missing:
            raise RulesError(f"{where}: columns {missing} are not in stream {stream.name}")
    if label is not None and label not in known:
        raise RulesError(f"{path.name}: label column {label!r} is not in stream {stream.name}")
    return RuleSet(
        table=stream.table,
        entity=entity,
        label=label,
        rules=list(doc.get("rules") or []),
        lookback_months=int(doc.get("lookback_months", 24)),
    )


def _keyed(frame: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    out = frame.copy()
    if rules.entity and not frame.empty:
        out["_entity"] = frame[rules.entity].astype(str).agg("|".join, axis=1)
    else:
        out["_entity"] = ""
    label = frame[rules.label].astype(object) if rules.label in frame else None
    out["_label"] = (
        out["_entity"] if label is None else label.where(label.notna(), out["_entity"]).astype(str)
    )
    return out


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 1e15 else f"{value:.3e}"


def _ratio_text(ratio: float) -> str:
    return f"{ratio:,.0f}" if ratio >= 1 else f"1/{1 / ratio:,.0f}"


def _who(label: str, entity: str) -> str:
    return label if label == entity else f"{label}（{entity}）"


def _unit_slip(ctx: Context, rule: dict[str, Any]) -> RuleResult:
    """Value / median of the entity's last ``months`` loaded periods ≥ ratio or ≤ 1/ratio."""
    bound, months = float(rule.get("ratio", 1000)), int(rule.get("months", 12))
    result, unchecked, valued = RuleResult(), set(), set()
    for column in rule["columns"]:
        hist = ctx.history[ctx.history[column].notna() & (ctx.history[column] != 0)]
        hist = hist.assign(_abs=hist[column].astype(float).abs())
        rank = hist.groupby("_entity")["period"].rank(method="dense", ascending=False)
        reference = hist[rank <= months].groupby("_entity")["_abs"].median()
        rows = ctx.current[ctx.current[column].notna() & (ctx.current[column] != 0)]
        valued.update(int(r) for r in rows[ROW])
        for row in rows.to_dict("records"):
            entity, label, value = row["_entity"], row["_label"], float(row[column])
            ref = reference.get(entity)
            if ref is None or not ref:
                unchecked.add(_who(label, entity))
                continue
            result.checked += 1
            ratio = abs(value) / float(ref)
            if ratio >= bound or ratio <= 1 / bound:
                message = (
                    f"疑似计量单位错误（元/万元）：{_who(label, entity)} {ctx.describe(column)}"
                    f" 本期 {_fmt(value)} {ctx.unit(column)}，参考值（前{months}期中位数）"
                    f"{_fmt(float(ref))}，比值 {_ratio_text(ratio)}"
                )
                result.findings.append(
                    Finding(entity, label, message, [int(row[ROW])], value, float(ref))
                )
    result.unchecked = sorted(unchecked)
    result.values = len(valued)  # rows with a value: the base of ``mostly``
    return result


def _per_entity(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Sum of ``column`` per entity, with its label and rows."""
    valued = frame[frame[column].notna()]
    return valued.groupby("_entity").agg(
        value=(column, "sum"), label=("_label", "first"), rows=(ROW, list)
    )


def _at(ctx: Context, column: str, period: str) -> pd.Series:
    hist = ctx.history[(ctx.history["period"] == period) & ctx.history[column].notna()]
    return hist.groupby("_entity")[column].sum().astype(float)


def _hb_edit(ctx: Context, rule: dict[str, Any]) -> RuleResult:
    """Hidiroglou–Berthelot on current/previous ratios (previous: the last loaded period
    within ``previous_months``). Needs ``min_entities`` pairs, else nothing is judged."""
    column = rule["column"]
    u, a, c = float(rule.get("u", 0.5)), float(rule.get("a", 0.05)), float(rule.get("c", 4))
    cur = _per_entity(ctx.current, column)
    result = RuleResult(values=len(cur))
    earliest = str(Period.parse(ctx.period).shift(-int(rule.get("previous_months", 3))))
    loaded = ctx.history.loc[ctx.history["period"] >= earliest, "period"]
    prev_period = loaded.max() if len(loaded) else None
    prev = _at(ctx, column, prev_period) if prev_period else pd.Series(dtype=float)
    both = cur.join(prev.rename("previous"), how="inner")
    both = both[(both["value"] > 0) & (both["previous"] > 0)]
    if len(both) < int(rule.get("min_entities", 8)):
        result.unchecked = sorted(_who(r.label, e) for e, r in cur.iterrows())
        return result
    result.unchecked = sorted(_who(r.label, e) for e, r in cur.drop(both.index).iterrows())
    result.checked = len(both)
    ratio = both["value"] / both["previous"]
    median = float(ratio.median())
    centred = np.where(ratio < median, 1 - median / ratio, ratio / median - 1)
    effect = centred * np.maximum(both["value"], both["previous"]) ** u
    q1, med, q3 = (float(np.quantile(effect, q)) for q in (0.25, 0.5, 0.75))
    low = med - c * max(med - q1, abs(a * med))
    high = med + c * max(q3 - med, abs(a * med))
    floor = float(rule.get("min_ratio_change", 0))  # |r / median − 1| below it is never flagged
    for (entity, row), r, e in zip(both.iterrows(), ratio, effect, strict=True):
        if low <= e <= high or abs(r / median - 1) < floor:
            continue
        message = (
            f"比值离群（HB 检验）：{_who(row.label, entity)} {ctx.describe(column)} 本期 "
            f"{_fmt(row.value)}，上期（{prev_period}）{_fmt(row.previous)}，比值 {r:.2f}"
            f"（全体中位比值 {median:.2f}；效应 {e:.1f} 不在 [{low:.1f}, {high:.1f}]）"
        )
        result.findings.append(
            Finding(entity, row.label, message, [int(x) for x in row.rows], row.value, row.previous)
        )
    return result


def _growth_bands(ctx: Context, rule: dict[str, Any]) -> RuleResult:
    """The month against the same month a year earlier and the month before, both ways."""
    column = rule["column"]
    cur = _per_entity(ctx.current, column)
    result = RuleResult(values=len(cur))
    here = Period.parse(ctx.period)
    bands = [
        ("同比", str(here.shift(-12)), rule.get("yoy_ratio")),
        ("环比", str(here.shift(-1)), rule.get("mom_ratio")),
    ]
    unchecked = set()
    for name, period, bound in bands:
        if not bound:
            continue
        ref = _at(ctx, column, period)
        for entity, row in cur.iterrows():
            base = ref.get(entity)
            if base is None or base <= 0 or row.value <= 0:
                unchecked.add(_who(row.label, entity))
                continue
            result.checked += 1
            ratio = row.value / base
            if ratio > float(bound) or ratio < 1 / float(bound):
                message = (
                    f"{name}变动超出范围：{_who(row.label, entity)} {ctx.describe(column)} 本期 "
                    f"{_fmt(row.value)}，{period} 为 {_fmt(base)}，为其 {ratio:.2f} 倍"
                    f"（界限 1/{bound}–{bound} 倍）"
                )
                result.findings.append(
                    Finding(entity, row.label, message, [int(x) for x in row.rows], row.value, base)
                )
    result.unchecked = sorted(unchecked)
    return result


def _published_yoy(ctx: Context, rule: dict[str, Any]) -> RuleResult:
    """|published YoY| within bounds, and close to the YoY implied by the levels."""
    value, yoy = rule["value"], rule["yoy"]
    rows = ctx.current[ctx.current[yoy].notna()]
    result = RuleResult(values=len(rows))
    year_ago = _at(ctx, value, str(Period.parse(ctx.period).shift(-12)))
    bound, gap = rule.get("max_abs_pct"), rule.get("max_gap_points")
    unchecked = set()
    for row in rows.to_dict("records"):
        entity, label, pct = row["_entity"], row["_label"], float(row[yoy])
        who = f"{_who(label, entity)} {ctx.describe(yoy)}"
        result.checked += 1
        if bound is not None and abs(pct) > float(bound):
            message = f"同比增速超出范围：{who} 公布 {pct:.1f}%，超过 ±{bound}%"
            result.findings.append(Finding(entity, label, message, [int(row[ROW])], pct, None))
        base, level = year_ago.get(entity), row[value]
        if gap is None:
            continue
        if base is None or base <= 0 or level is None or pd.isna(level):
            unchecked.add(_who(label, entity))
            continue
        implied = (float(level) / base - 1) * 100
        if abs(pct - implied) > float(gap):
            message = (
                f"公布同比与水平值不符：{who} 公布 {pct:.1f}%，按上年同期水平值推算 "
                f"{implied:.1f}%，相差 {abs(pct - implied):.1f} 个百分点（界限 {gap}）"
            )
            result.findings.append(Finding(entity, label, message, [int(row[ROW])], pct, implied))
    result.unchecked = sorted(unchecked)
    return result


def _bounds(ctx: Context, rule: dict[str, Any]) -> RuleResult:
    """A value within absolute ``min``/``max`` (per row; no history needed)."""
    column = rule["column"]
    rows = ctx.current[ctx.current[column].notna()]
    result = RuleResult(values=len(rows), checked=len(rows))
    low, high = rule.get("min"), rule.get("max")
    for row in rows.to_dict("records"):
        value = float(row[column])
        if high is not None and value > float(high):
            what = f"高于上限 {_fmt(float(high))}"
        elif low is not None and value < float(low):
            what = f"低于合理下限 {_fmt(float(low))}"
        else:
            continue
        message = (
            f"{_who(row['_label'], row['_entity'])} {ctx.describe(column)} {_fmt(value)} "
            f"{ctx.unit(column)}，{what}"
        )
        result.findings.append(
            Finding(row["_entity"], row["_label"], message, [int(row[ROW])], value, None)
        )
    return result


RULES: dict[str, Callable[[Context, dict[str, Any]], RuleResult]] = {
    "unit_slip": _unit_slip,
    "hb_edit": _hb_edit,
    "growth_bands": _growth_bands,
    "published_yoy": _published_yoy,
    "bounds": _bounds,
}


def _outcomes(
    ctx: Context, rules: RuleSet, i: int, rule: dict[str, Any], result: RuleResult
) -> list[dict[str, Any]]:
    """The rule's result as the fields of the runner's ``Outcome`` (plain data: the
    runner imports this module, not the other way round)."""
    kind, columns = rule["rule"], _columns_of(rule)
    flagged = sorted({r for f in result.findings for r in f.rows})
    tolerated = 1 - float(rule.get("mostly", 1.0))
    success = not result.findings or (
        result.values > 0 and len(flagged) / result.values <= tolerated
    )
    params = {k: v for k, v in rule.items() if k not in ("rule", "severity", "description")}
    common = {
        "stream": ctx.stream.name,
        "suite": f"{rules.table}{RULES_SUFFIX}",
        "column": ",".join(columns) or None,
    }
    out = [
        dict(
            **common,
            index=INDEX_BASE + 2 * i,
            expectation_type=f"plausibility_{kind}",
            severity=rule["severity"],
            description=rule["description"],
            success=bool(success),
            element_count=result.checked,
            unexpected_count=len(result.findings),
            unexpected_percent=(
                100 * len(result.findings) / result.checked if result.checked else None
            ),
            sample=[f.message for f in result.findings[:SAMPLE]],
            kwargs={**params, "findings": [f.to_dict() for f in result.findings]},
            unexpected_rows=flagged,
        )
    ]
    if result.unchecked:
        out.append(
            dict(
                **common,
                index=INDEX_BASE + 2 * i + 1,
                expectation_type=UNCHECKED,
                severity="info",
                description=f"{rule['description']}：无历史数据，未检查",
                success=False,
                element_count=len(result.unchecked),
                unexpected_count=len(result.unchecked),
                unexpected_percent=None,
                sample=result.unchecked[:SAMPLE],
                kwargs={"rule": kind, "unchecked": result.unchecked},
                unexpected_rows=[],
            )
        )
    return out


def check_stream(
    engine: Engine, stream: StreamSpec, period: str, frame: pd.DataFrame
) -> list[dict[str, Any]]:
    """Every rule of the stream's rules file on its batch, against the loaded history:
    the fields of one ``Outcome`` per rule (and one per rule with unchecked entities)."""
    rules = load_rules(stream)
    if rules is None or not rules.rules:
        return []
    needed = [*rules.entity, *([rules.label] if rules.label else [])]
    needed += [c for rule in rules.rules for c in _columns_of(rule)]
    present = [c for c in dict.fromkeys(needed) if c in frame.columns]
    if len(present) < len(set(needed)):  # a missing column is the suite's root cause
        return []
    history = entity_history(engine, stream, period, present, rules.lookback_months)
    ctx = Context(stream, period, _keyed(frame, rules), _keyed(history, rules))
    outcomes: list[dict[str, Any]] = []
    for i, rule in enumerate(rules.rules):
        outcomes += _outcomes(ctx, rules, i, rule, RULES[rule["rule"]](ctx, rule))
    return outcomes
