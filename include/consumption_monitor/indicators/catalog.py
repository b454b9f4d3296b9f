"""The measure catalog as typed objects, loaded from ``measures.yaml`` and, for the plan's
qualitative tasks (milestone KPIs), ``plan_tasks.yaml`` (:mod:`.plan_tasks`).

The YAML is the single place where the plan's measures, KPIs, targets, sources and status
thresholds are written down; the snapshot engine, the report and the alerts read them from
here. Loading checks the file thoroughly so a typo fails at load time, not in a report.
Only ``yaml`` and the feed specs' module are imported, so DAG files may use the catalog at
parse time (the feed DAGs' ``measure-N`` tags come from ``measures_for_feed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from consumption_monitor.feeds.spec import YAML_LOADER, list_feeds
from consumption_monitor.indicators.plan_tasks import TasksError, read_tasks, task_kpis

CATALOG_FILE = Path(__file__).resolve().parent / "measures.yaml"

ACTIONS: tuple[str, ...] = ("一", "二", "三", "四", "五", "六")
KINDS: tuple[str, ...] = ("target", "milestone", "indicator")
COMPARATORS: tuple[str, ...] = (">=", ">", "=")
# aggregation -> the `columns` keys it needs, and those it may use
AGGREGATIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ytd_value": (frozenset({"ytd"}), frozenset({"month", "yoy_ytd", "yoy_month"})),
    "sum_months": (frozenset({"value"}), frozenset()),
    "ratio_months": (frozenset({"numerator", "denominator"}), frozenset()),
    "count_year": (frozenset({"key"}), frozenset()),
    "milestone": (frozenset(), frozenset()),
    "none": (frozenset(), frozenset()),
}
YOY_BASES: tuple[str, ...] = ("published", "computed", "none")
# Pace kinds (how expected-to-date and the status are derived; measures.yaml, status:).
PACES: tuple[str, ...] = ("linear", "seasonal", "schedule", "level", "year_end", "ledger", "none")
CUMULATIVE_PACES: tuple[str, ...] = ("linear", "seasonal", "schedule")
# Units of counts: printed as whole numbers with their unit ("5 场"), never "5.00".
COUNT_UNITS: frozenset[str] = frozenset({"场", "个", "家", "条", "人", "次"})
# Every status a snapshot can carry, in report order. 与N月合并发布 is written for the month
# N of the feed's next release (only 与2月合并发布 occurs: January published with February).
STATUSES: tuple[str, ...] = (
    "已完成",
    "正常推进",
    "进度滞后",
    "严重滞后",
    "未完成",
    "达标",
    "未达标",
    "未到期",
    "逾期",
    "与2月合并发布",
    "暂无数据",
)


class CatalogError(ValueError):
    """The catalog file is inconsistent; the message names the measure or KPI."""


@dataclass(frozen=True)
class Target:
    """A numeric target of the plan, in the KPI's unit, for the KPI's period."""

    value: float
    comparator: str  # ">=", ">" or "="

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "comparator": self.comparator}


@dataclass(frozen=True)
class Pace:
    """How a KPI's expected-to-date value and status are judged.

    ``linear`` target x months / 12; ``seasonal`` the mean cumulative share of the KPI's
    own previous ``years`` (linear while fewer than ``min_years`` complete years exist);
    ``schedule`` 12 cumulative ``shares`` (from the planned ``months``, one per event);
    ``level`` a rate held all year (达标/未达标); ``year_end`` a one-off deliverable due
    by month ``due`` (未到期/已完成/逾期); ``ledger`` a milestone's ledger status;
    ``none`` an indicator. ``basis`` quotes the plan or names the declared schedule."""

    kind: str
    shares: tuple[float, ...] | None = None
    months: tuple[int, ...] = ()
    due: int = 12
    years: int = 2
    min_years: int = 1
    basis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "schedule":
            out.update(months=list(self.months), shares=list(self.shares or ()))
        if self.kind == "year_end":
            out["due"] = self.due
        if self.kind == "seasonal":
            out.update(years=self.years, min_years=self.min_years)
        if self.basis:
            out["basis"] = self.basis
        return out


@dataclass(frozen=True)
class Kpi:
    """One thing a measure is judged on: a target, a milestone or an economic indicator."""

    id: str
    name: str
    kind: str
    measure_number: int
    unit: str | None
    period: str | None
    target: Target | None
    source: str | None  # warehouse view, None when no feed carries it yet
    feed: str | None
    aggregation: str
    columns: dict[str, str] = field(default_factory=dict)
    filter: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scale: float = 1.0  # source unit -> KPI unit
    factor: float = 1.0  # ratio_months: numerator / denominator * factor
    pace: Pace = field(default_factory=lambda: Pace("linear"))
    yoy: str = "none"
    panel: str | None = None  # computed YoY: the reporting-unit column of a like-for-like panel
    task: str | None = None  # milestone: the task name in the ledger
    seed: str | None = None  # the seed sentence a target comes from
    units: tuple[str, ...] = ()  # 责任单位 of a task (a subset of the measure's)
    scope: str | None = None  # what the figure counts, shown in the report (e.g. event types)

    @property
    def has_source(self) -> bool:
        return self.source is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "period": self.period,
            "target": self.target.to_dict() if self.target else None,
            "source": self.source,
            "feed": self.feed,
            "aggregation": self.aggregation,
            "columns": dict(self.columns),
            "filter": {k: list(v) for k, v in self.filter.items()},
            "scale": self.scale,
            "factor": self.factor,
            "pace": self.pace.to_dict(),
            "yoy": self.yoy,
            "panel": self.panel,
            "task": self.task,
            "seed": self.seed,
            "units": list(self.units),
            "scope": self.scope,
        }


@dataclass(frozen=True)
class Measure:
    """One of the plan's 19 measures (（一）…（十九）)."""

    number: int
    action: str
    action_title: str
    title: str
    responsible_units: list[str]
    kpis: list[Kpi]

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "action": self.action,
            "action_title": self.action_title,
            "title": self.title,
            "responsible_units": list(self.responsible_units),
            "kpis": [k.to_dict() for k in self.kpis],
        }


@dataclass(frozen=True)
class StatusRules:
    """Thresholds on the completion ratio, the small-target rule, the default pace per
    kind of KPI and the milestone status mapping."""

    on_track: float
    lagging: float
    milestone: dict[str, str]
    small_target: float = 5
    small_units: tuple[str, ...] = ()
    default_pace: dict[str, str] = field(default_factory=dict)

    def is_count(self, kpi: Kpi) -> bool:
        """A count target with a cumulative pace: nothing is behind while not one whole
        event is expected yet (0.83 of an event in January is no lag)."""
        return bool(
            kpi.target is not None and kpi.unit in COUNT_UNITS and kpi.pace.kind in CUMULATIVE_PACES
        )

    def is_small(self, kpi: Kpi) -> bool:
        """A count target small enough that one event swings its ratio: judged by what is
        still missing against the months left."""
        return bool(
            kpi.target is not None
            and kpi.unit in self.small_units
            and kpi.target.value <= self.small_target
            and kpi.pace.kind in CUMULATIVE_PACES
        )


@dataclass(frozen=True)
class Catalog:
    plan: str
    actions: dict[str, str]
    measures: list[Measure]
    status: StatusRules

    @property
    def kpis(self) -> list[Kpi]:
        return [k for m in self.measures for k in m.kpis]

    def measure(self, number: int) -> Measure:
        for m in self.measures:
            if m.number == number:
                return m
        raise KeyError(f"no measure {number}")

    def kpi(self, kpi_id: str) -> Kpi:
        for k in self.kpis:
            if k.id == kpi_id:
                return k
        raise KeyError(f"no KPI {kpi_id!r}")

    def measures_for_feed(self, feed: str) -> list[Measure]:
        """The measures with at least one KPI computed from ``feed``'s data."""
        return [m for m in self.measures if any(k.feed == feed for k in m.kpis)]

    def sources(self) -> set[str]:
        return {k.source for k in self.kpis if k.source}

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "measures": [m.to_dict() for m in self.measures]}


def _schedule_shares(months: list[int], where: str) -> tuple[float, ...]:
    if not months or any(not isinstance(m, int) or not 1 <= m <= 12 for m in months):
        raise CatalogError(f"{where}: a schedule's months are 1..12, one per planned event")
    return tuple(round(sum(1 for x in months if x <= m) / len(months), 6) for m in range(1, 13))


def _pace(raw: Any, default: str, where: str) -> Pace:
    """A pace from the YAML: a kind name, 12 cumulative shares (a schedule), or a mapping
    ``{kind, months | shares, due, years, min_years, basis}``."""
    raw = default if raw is None else raw
    if isinstance(raw, list):
        raw = {"kind": "schedule", "shares": raw}
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict) or raw.get("kind") not in PACES:
        raise CatalogError(f"{where}: pace is one of {PACES} (or a mapping with a kind)")
    kind, shares, months = raw["kind"], None, tuple(raw.get("months") or ())
    if kind == "schedule":
        if "months" in raw:
            shares = _schedule_shares(list(months), where)
        else:
            shares = tuple(float(x) for x in raw.get("shares") or ())
        if len(shares) != 12 or list(shares) != sorted(shares) or shares[0] < 0 or shares[-1] != 1:
            raise CatalogError(f"{where}: a schedule is 12 rising cumulative shares ending at 1")
    due = int(raw.get("due", 12))
    if not 1 <= due <= 12:
        raise CatalogError(f"{where}: a year_end pace is due in month 1..12")
    years, min_years = int(raw.get("years", 2)), int(raw.get("min_years", 1))
    if not 1 <= min_years <= years:
        raise CatalogError(f"{where}: a seasonal pace needs 1 <= min_years <= years")
    basis = raw.get("basis")
    return Pace(kind, shares, months, due, years, min_years, str(basis) if basis else None)


def _default_pace(kind: str, unit: str | None, defaults: dict[str, str]) -> str:
    if kind == "target" and unit == "%":
        return defaults["rate_target"]
    return defaults[kind]


def _kpi(raw: dict[str, Any], number: int, feeds: frozenset[str], rules: StatusRules) -> Kpi:
    where = f"measure {number} KPI {raw.get('id')!r}"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind must be one of {KINDS}")
    target = None
    if raw.get("target") is not None:
        t = raw["target"]
        if t.get("comparator") not in COMPARATORS or not isinstance(t.get("value"), int | float):
            raise CatalogError(f"{where}: a target is {{value: number, comparator: >=|>|=}}")
        target = Target(t["value"], t["comparator"])
    if (kind == "target") != (target is not None):
        raise CatalogError(f"{where}: kind target and a target go together")
    aggregation = raw.get("aggregation")
    if aggregation not in AGGREGATIONS:
        raise CatalogError(f"{where}: aggregation must be one of {tuple(AGGREGATIONS)}")
    columns = dict(raw.get("columns") or {})
    needed, optional = AGGREGATIONS[aggregation]
    if not needed <= set(columns) or set(columns) - needed - optional:
        raise CatalogError(f"{where}: {aggregation} takes columns {sorted(needed | optional)}")
    source, feed = raw.get("source"), raw.get("feed")
    if (aggregation == "none") != (source is None) or (source is None) != (feed is None):
        raise CatalogError(f"{where}: source and feed are both set unless aggregation is none")
    if feed is not None and feed not in feeds:
        raise CatalogError(f"{where}: unknown feed {feed!r}")
    if (kind == "milestone") != (aggregation == "milestone") or (
        kind == "milestone" and not raw.get("task")
    ):
        raise CatalogError(f"{where}: a milestone KPI names its ledger task")
    yoy = raw.get("yoy", "none")
    if yoy not in YOY_BASES:
        raise CatalogError(f"{where}: yoy must be one of {YOY_BASES}")
    if yoy == "published" and "yoy_ytd" not in columns:
        raise CatalogError(f"{where}: a published YoY needs a yoy_ytd column")
    panel = raw.get("panel")
    if panel is not None and (yoy != "computed" or aggregation not in ("ytd_value", "sum_months")):
        raise CatalogError(f"{where}: a panel serves a computed YoY of ytd_value or sum_months")
    pace = _pace(raw.get("pace"), _default_pace(kind, raw.get("unit"), rules.default_pace), where)
    allowed = {
        "target": {"linear", "seasonal", "schedule", "level", "year_end"},
        "milestone": {"ledger", "year_end"},
        "indicator": {"none"},
    }[kind]
    if pace.kind not in allowed:
        raise CatalogError(f"{where}: a {kind} KPI takes a pace among {sorted(allowed)}")
    return Kpi(
        id=str(raw["id"]),
        name=str(raw["name"]),
        kind=kind,
        measure_number=number,
        unit=raw.get("unit"),
        period=raw.get("period"),
        target=target,
        source=source,
        feed=feed,
        aggregation=aggregation,
        columns=columns,
        filter={k: tuple(str(x) for x in v) for k, v in (raw.get("filter") or {}).items()},
        scale=float(raw.get("scale", 1)),
        factor=float(raw.get("factor", 1)),
        pace=pace,
        yoy=yoy,
        panel=_ident_or_none(panel, where),
        task=raw.get("task"),
        seed=raw.get("seed"),
        units=tuple(str(u) for u in raw.get("units") or ()),
        scope=raw.get("scope"),
    )


def parse_catalog(data: dict[str, Any], tasks: dict[str, Any] | None = None) -> Catalog:
    """Build and check a catalog from the parsed YAML (and the plan tasks' file)."""
    actions = {str(k): str(v) for k, v in data["actions"].items()}
    if tuple(actions) != ACTIONS:
        raise CatalogError(f"actions must be {ACTIONS}")
    feeds = frozenset(list_feeds())  # a KPI's feed is a feed with a spec
    status = _status_rules(data["status"])
    try:
        by_measure = task_kpis(tasks)
    except TasksError as exc:
        raise CatalogError(str(exc)) from None
    measures = []
    for raw in data["measures"]:
        number = int(raw["number"])
        if raw["action"] not in actions:
            raise CatalogError(f"measure {number}: unknown action {raw['action']!r}")
        kpis = [_kpi(k, number, feeds, status) for k in [*raw["kpis"], *by_measure.pop(number, [])]]
        units = [str(u) for u in raw["responsible_units"]]
        for kpi in kpis:
            if not set(kpi.units) <= set(units):
                raise CatalogError(f"{kpi.id}: units {kpi.units} not among measure {number}'s")
        measures.append(
            Measure(
                number=number,
                action=raw["action"],
                action_title=actions[raw["action"]],
                title=str(raw["title"]),
                responsible_units=units,
                kpis=kpis,
            )
        )
    if by_measure:
        raise CatalogError(f"plan tasks of unknown measures {sorted(by_measure)}")
    if [m.number for m in measures] != list(range(1, len(measures) + 1)):
        raise CatalogError("measures must be numbered 1, 2, … in order")
    ids = [k.id for m in measures for k in m.kpis]
    if len(ids) != len(set(ids)):
        raise CatalogError(f"duplicate KPI ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return Catalog(plan=str(data["plan"]), actions=actions, measures=measures, status=status)


def _ident_or_none(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
        raise CatalogError(f"{where}: {value!r} is not a column name")
    return value


def _status_rules(rules: dict[str, Any]) -> StatusRules:
    small = rules.get("small_target") or {}
    status = StatusRules(
        on_track=float(rules["on_track"]),
        lagging=float(rules["lagging"]),
        milestone={str(k): str(v) for k, v in rules["milestone"].items()},
        small_target=float(small.get("max", 0)),
        small_units=tuple(str(u) for u in small.get("units") or ()),
        default_pace={str(k): str(v) for k, v in (rules.get("default_pace") or {}).items()},
    )
    if not 0 < status.lagging < status.on_track <= 1:
        raise CatalogError("status thresholds: 0 < lagging < on_track <= 1")
    if not set(status.milestone.values()) <= set(STATUSES):
        raise CatalogError(f"milestone statuses must be among {STATUSES}")
    if set(status.default_pace) != {"target", "rate_target", "milestone", "indicator"}:
        raise CatalogError("default_pace names target, rate_target, milestone and indicator")
    if not set(status.default_pace.values()) <= set(PACES):
        raise CatalogError(f"default paces must be among {PACES}")
    if list(rules.get("labels") or []) != list(STATUSES):
        raise CatalogError(f"status labels must be {STATUSES} (in this order)")
    return status


@cache
def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog (cached per path); ``path`` defaults to the packaged measures.yaml, the
    plan tasks are read from ``plan_tasks.yaml`` beside it."""
    source = Path(path or CATALOG_FILE)
    text = source.read_text(encoding="utf-8")
    tasks = read_tasks(source.with_name("plan_tasks.yaml"))
    return parse_catalog(yaml.load(text, Loader=YAML_LOADER), tasks)
