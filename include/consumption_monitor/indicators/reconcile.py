"""Reconciliation of figures two feeds carry (issue 15 §3).

Job fairs come from the employment feed (one row per fair) and from the units' event
ledger (活动类型 招聘会); in 2026 the sample feeds said 5 and 6. Decision: each KPI keeps one
declared source of truth, its ``source`` in ``measures.yaml`` (the snapshot never mixes
sources); ``reconciliation.yaml`` names the other source of the same figure, and this module
compares the year-to-date values of both at a period. A difference beyond the tolerance is
a warning line, shown by ``cm status`` and in the monthly report's footnote; it never
changes a status. A side with no data for the year is not compared (the lateness of a feed
is reported elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from consumption_monitor.indicators.catalog import CatalogError, Kpi, load_catalog

CHECKS_FILE = Path(__file__).resolve().parent / "reconciliation.yaml"
AGGREGATIONS = {"ytd_value": "ytd", "sum_months": "value"}


@dataclass(frozen=True)
class Side:
    title: str
    source: str
    aggregation: str
    column: str
    filter: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Check:
    kpi: Kpi
    truth: Side
    other: Side
    tolerance: float


@dataclass(frozen=True)
class Difference:
    check: Check
    period: str
    truth: float
    other: float

    def line(self) -> str:
        k, unit = self.check.kpi, self.check.kpi.unit or ""
        return (
            f"{k.name}两个来源不一致（{self.period[:4]} 年截至 {self.period}）："
            f"{self.check.truth.title} {self.truth:g} {unit}（口径来源），"
            f"{self.check.other.title} {self.other:g} {unit}；"
            f"指标以前者为准，请核对后者"
        )


def _side(raw: dict[str, Any], where: str, title: str | None = None) -> Side:
    aggregation = raw.get("aggregation")
    if aggregation not in AGGREGATIONS:
        raise CatalogError(f"{where}: aggregation must be one of {sorted(AGGREGATIONS)}")
    column = (raw.get("columns") or {}).get(AGGREGATIONS[aggregation])
    if not column or not raw.get("source"):
        raise CatalogError(f"{where}: a source and its {AGGREGATIONS[aggregation]} column")
    return Side(
        title=str(title or raw.get("title") or raw["source"]),
        source=str(raw["source"]),
        aggregation=aggregation,
        column=str(column),
        filter={k: tuple(str(x) for x in v) for k, v in (raw.get("filter") or {}).items()},
    )


@cache
def load_checks(path: Path | None = None) -> tuple[Check, ...]:
    raw = yaml.safe_load((path or CHECKS_FILE).read_text(encoding="utf-8")) or {}
    catalog = load_catalog()
    checks = []
    for entry in raw.get("checks") or ():
        kpi = catalog.kpi(entry["kpi"])
        where = f"reconciliation of {kpi.id}"
        truth = _side(
            {"source": kpi.source, "aggregation": kpi.aggregation, "columns": kpi.columns,
             "filter": kpi.filter},
            where,
            entry.get("truth"),
        )  # fmt: skip
        other = _side(dict(entry["other"]), where)
        if other.source == truth.source:
            raise CatalogError(f"{where}: the other source is the KPI's own")
        checks.append(Check(kpi, truth, other, float(entry.get("tolerance", 0))))
    return tuple(checks)


def _value(engine: Engine, side: Side, period: str) -> float | None:
    params: dict[str, Any] = {"first": f"{period[:4]}-01", "last": period}
    where = ["period between :first and :last"]
    for i, (column, values) in enumerate(side.filter.items()):
        marks = ", ".join(f":f{i}_{j}" for j in range(len(values)))
        where.append(f'"{column}" in ({marks})')
        params.update({f"f{i}_{j}": v for j, v in enumerate(values)})
    cond = " and ".join(where)
    if side.aggregation == "sum_months":
        sql = f'select count(*), sum("{side.column}") from {side.source} where {cond}'
    else:  # ytd_value: the latest period of the year up to ``period``
        sql = (
            f'select count(*), sum("{side.column}") from {side.source} where {cond} '
            f"and period = (select max(period) from {side.source} where {cond})"
        )
    with engine.connect() as conn:
        rows, value = conn.execute(text(sql), params).one()
    return None if not rows else float(value or 0)


def reconcile(engine: Engine, period: str) -> list[Difference]:
    """The checks whose two sources differ beyond their tolerance at ``period``."""
    out = []
    for check in load_checks():
        truth, other = _value(engine, check.truth, period), _value(engine, check.other, period)
        if truth is None or other is None:
            continue
        if abs(truth - other) > check.tolerance:
            out.append(Difference(check, period, truth, other))
    return out


def reconciliation_warnings(engine: Engine, period: str) -> list[str]:
    """One line per disagreement; none when a view is missing (warehouse not migrated)."""
    try:
        return [d.line() for d in reconcile(engine, period)]
    except DBAPIError as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            return []
        raise
