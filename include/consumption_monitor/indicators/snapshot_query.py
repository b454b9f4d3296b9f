"""The snapshot query: every KPI of the catalog for one period, computed by one SQL statement.

Each KPI becomes one branch of a ``union all`` that reads its source view with the catalog's
aggregation (year-to-date value, sum or ratio of months, distinct units of the year to
date, latest milestone status) and carries its target, pace and the status it takes
without data; the outer CTEs derive expected-to-date, completion ratio, like-for-like YoY
and status (the rules of measures.yaml's status section, in their order), so the database
does all the arithmetic. A seasonal pace's shares come from the KPI's own snapshots of the
previous years (``snapshots.seasonal_paces``) and are bound as constants. Identifiers
(views, columns) come from the checked catalog and are validated here; values (periods,
filters, task names) are bound parameters. Works unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from consumption_monitor.common.periods import Period
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.indicators.catalog import Catalog, Kpi

IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

# The outer part of the query: components and status from the observed branches.
_STATUS_SQL = """
observed as (
{branches}
),

measured as (
    select
        observed.*,
        case
            when target_value is null or data_period is null then null
            else target_value * pace_share
        end as expected_to_date,
        case
            when target_value is null or actual_ytd is null then 0
            when comparator = '>' and actual_ytd > target_value then 1
            when comparator <> '>' and actual_ytd >= target_value then 1
            else 0
        end as is_met
    from observed
),

rated as (
    select
        measured.*,
        case
            when expected_to_date is null or actual_ytd is null then null
            when expected_to_date = 0 then null
            else round(actual_ytd * 1.0 / expected_to_date, 4)
        end as completion_ratio,
        case
            when yoy_basis <> 'computed' or actual_ytd is null or prior_ytd is null then null
            when prior_ytd = 0 or comparable_ytd is null then null
            else round((comparable_ytd - prior_ytd) * 100.0 / prior_ytd, 2)
        end as yoy_computed_pct
    from measured
),

final as (
    select
        kpi_id,
        data_period,
        months_elapsed,
        actual_month,
        actual_ytd,
        prior_ytd,
        comparable_ytd,
        yoy_month_pct,
        coalesce(yoy_ytd_pct, yoy_computed_pct) as yoy_ytd_pct,
        target_value,
        pace,
        pace_basis,
        expected_to_date,
        completion_ratio,
        milestone_status,
        status_date,
        source_batches,
        validation_state,
        data_loaded_at,
        case
            when kind = 'milestone' and (data_period is null or milestone_status is null)
                then no_data_status
            when kind = 'milestone' and pace = 'year_end' then case
                when (case milestone_status {milestone_cases} end) = '已完成' then '已完成'
                when :month < due_month then '未到期'
                else '逾期'
            end
            when kind = 'milestone' then coalesce(
                case milestone_status {milestone_cases} end, '暂无数据'
            )
            when data_period is null or actual_ytd is null then no_data_status
            when kind = 'indicator' then null
            when pace = 'level' and is_met = 1 and months_elapsed = 12 then '已完成'
            when pace = 'level' and is_met = 1 then '达标'
            when pace = 'level' then '未达标'
            when is_met = 1 then '已完成'
            when months_elapsed = 12 and pace in ('linear', 'seasonal', 'schedule')
                then '未完成'
            when pace = 'year_end' and months_elapsed < due_month then '未到期'
            when pace = 'year_end' then '逾期'
            when is_small = 1 and actual_ytd >= {whole_expected} then '正常推进'
            when is_small = 1 and target_value - actual_ytd <= 12 - months_elapsed
                then '进度滞后'
            when is_small = 1 then '严重滞后'
            when expected_to_date <= 0 then '正常推进'
            when is_count = 1 and {whole_expected} < 1 then '正常推进'
            when completion_ratio >= :on_track then '正常推进'
            when completion_ratio >= :lagging then '进度滞后'
            else '严重滞后'
        end as status
    from rated
)

select * from final order by kpi_id
"""


def _ident(name: str) -> str:
    if not IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _num(value: float | None) -> str:
    return "null" if value is None else repr(float(value))


def prior_period_sql(column: str) -> str:
    """SQL for the same month a year before the 'YYYY-MM' in ``column``."""
    return (
        f"cast(cast(substr({column}, 1, 4) as integer) - 1 as varchar(4)) || substr({column}, 5, 3)"
    )


def no_data_status(kpi: Kpi, period: Period) -> str:
    """暂无数据, or 与N月合并发布 when the KPI's feed publishes the period's month only
    together with a later one (January with February: the feed spec's published_months)."""
    if kpi.feed is None:
        return "暂无数据"
    months = load_feed(kpi.feed).published_months
    if period.month in months:
        return "暂无数据"
    following = next((m for m in months if m > period.month), None)
    return f"与{following}月合并发布" if following else "暂无数据"


def pace_basis(kpi: Kpi, seasonal: tuple[tuple[float, ...] | None, str] | None) -> str | None:
    """What the expected value rests on, in the report's words."""
    pace = kpi.pace
    if pace.kind == "none":
        return None
    if pace.kind == "seasonal":
        return seasonal[1] if seasonal else "历史不足，按线性"
    text = {
        "linear": "年度目标 × 已过月数 / 12",
        "level": "全年保持（目标本身）",
        "ledger": "台账进展状态",
        "year_end": f"{pace.due}月底前完成",
        "schedule": "计划月份：" + "、".join(f"{m}月" for m in sorted(set(pace.months)))
        if pace.months
        else "计划累计占比",
    }[pace.kind]
    return f"{text}；{pace.basis}" if pace.basis else text


@dataclass
class SnapshotQuery:
    """The statement and its parameters for one period; ``skipped`` KPIs have no source."""

    sql: str
    params: dict[str, Any]
    skipped: list[str] = field(default_factory=list)


class _Builder:
    def __init__(
        self,
        catalog: Catalog,
        period: Period,
        dialect: str,
        views: set[str],
        kpis: list[Kpi],
        seasonal: dict[str, tuple[tuple[float, ...] | None, str]],
    ):
        self.catalog, self.period, self.dialect, self.views = catalog, period, dialect, views
        self.kpis, self.seasonal = kpis, seasonal
        self.timestamp = "timestamp with time zone" if dialect == "postgresql" else "varchar"
        self.params: dict[str, Any] = {
            "period": str(period),
            "year": f"{period.year:04d}",
            "year_start": f"{period.year:04d}-01",
            "prior_year_start": f"{period.year - 1:04d}-01",
            "month": period.month,
            "on_track": catalog.status.on_track,
            "lagging": catalog.status.lagging,
        }
        self.skipped: list[str] = []

    def bind(self, name: str, value: Any) -> str:
        self.params[name] = value
        return f":{name}"

    # -- pieces ----------------------------------------------------------------------

    def where(self, i: int, kpi: Kpi, alias: str) -> str:
        parts = ["1 = 1"]
        for j, (column, values) in enumerate(sorted(kpi.filter.items())):
            names = [self.bind(f"k{i}_f{j}_{n}", v) for n, v in enumerate(values)]
            parts.append(f"{alias}.{_ident(column)} in ({', '.join(names)})")
        return " and ".join(parts)

    def pace_share(self, kpi: Kpi) -> str:
        """The share of the yearly target expected by the data month."""
        month = "cast(substr(obs.data_period, 6, 2) as integer)"
        pace = kpi.pace
        if pace.kind in ("level", "ledger", "none") or kpi.target is None:
            return "1.0"
        if pace.kind == "year_end":
            return f"(case when {month} >= {int(pace.due)} then 1.0 else 0.0 end)"
        shares = pace.shares
        if pace.kind == "seasonal":
            shares = (self.seasonal.get(kpi.id) or (None, ""))[0]
        if shares is None:  # linear, or seasonal without history
            return f"({month} / 12.0)"
        cases = " ".join(f"when {m} then {_num(s)}" for m, s in enumerate(shares, start=1))
        return f"(case {month} {cases} end)"

    def batches(self, i: int, kpi: Kpi, since: str) -> tuple[str, str, str]:
        """source_batches, validation_state and data_loaded_at of the batches read."""
        feed = self.bind(f"k{i}_feed", kpi.feed)
        scope = (
            f"from audit_load_batch as b where b.feed = {feed} and b.is_current "
            f"and b.period between {since} and obs.data_period"
        )
        if self.dialect == "postgresql":
            ids = f"(select string_agg(b.batch_id, ',' order by b.period) {scope})"
        else:
            ids = (
                "(select group_concat(batch_id, ',') from (select b.batch_id "
                f"{scope} order by b.period))"
            )
        worst = (
            "(select case max(case b.verdict when 'warning' then 2 when 'passed' then 1 "
            f"else 3 end) when 1 then 'passed' when 2 then 'warning' else 'unknown' end {scope})"
        )
        loaded = f"(select max(b.loaded_at) {scope})"
        return ids, worst, loaded

    # -- observations per aggregation --------------------------------------------------

    def observation(self, i: int, kpi: Kpi) -> tuple[str, str]:
        """A subquery of one row (or none) with the KPI's observed values, and the lower
        period bound of the batches it read."""
        src = _ident(kpi.source or "")
        cols = {k: _ident(v) for k, v in kpi.columns.items()}
        scale = _num(kpi.scale)
        if kpi.aggregation == "ytd_value":
            return self._ytd_value(i, kpi, src, cols, scale), "obs.data_period"
        if kpi.aggregation == "milestone":
            return self._milestone(i, kpi, src), "obs.data_period"
        return self._flow_observation(i, kpi, src, cols, scale), ":year_start"

    @staticmethod
    def _with_panel(base: str, panel: str | None) -> str:
        """The observation with ``comparable_ytd`` and ``prior_ytd``: over the panel of units
        present in both periods when the KPI names one, else the totals."""
        if panel is None:
            return f"""
        select base.*, base.actual_ytd as comparable_ytd from ({base}
        ) as base"""
        return f"""
        select base.data_period, base.actual_month, base.actual_ytd, base.yoy_month_pct,
               base.yoy_ytd_pct, panel.prior_ytd, panel.comparable_ytd
        from ({base}
        ) as base
        left join ({panel}
        ) as panel on panel.data_period = base.data_period"""

    @staticmethod
    def _panel(units: str) -> str:
        """Sum the per-unit (cur_v, prior_v) of ``units`` over the units that have both."""
        return f"""
            select u.data_period, sum(u.cur_v) as comparable_ytd, sum(u.prior_v) as prior_ytd
            from ({units}
            ) as u
            where u.cur_v is not null and u.prior_v is not null
            group by u.data_period"""

    def _ytd_value(self, i: int, kpi: Kpi, src: str, cols: dict[str, str], scale: str) -> str:
        """Published year-to-date series: the latest period of the year, and a year before
        (over the units reporting in both periods when the KPI has a panel)."""
        w = self.where(i, kpi, "s")
        month = f"sum(s.{cols['month']}) * {scale}" if "month" in cols else "null"
        yoy_m = f"max(s.{cols['yoy_month']})" if "yoy_month" in cols else "null"
        yoy_y = f"max(s.{cols['yoy_ytd']})" if "yoy_ytd" in cols else "null"
        ytd = cols["ytd"]
        latest = (
            f"select max(s.period) from {src} as s "
            f"where {w} and s.period between :year_start and :period"
        )
        base = f"""
        select cur.*, prior.prior_ytd
        from (
            select s.period as data_period, {month} as actual_month,
                   sum(s.{ytd}) * {scale} as actual_ytd,
                   {yoy_m} as yoy_month_pct, {yoy_y} as yoy_ytd_pct
            from {src} as s
            where {w} and s.period = ({latest})
            group by s.period
        ) as cur
        left join (
            select s.period, sum(s.{ytd}) * {scale} as prior_ytd
            from {src} as s
            where {w} and s.period between :prior_year_start and :period
            group by s.period
        ) as prior on prior.period = {prior_period_sql("cur.data_period")}"""
        panel = None
        if kpi.panel:
            key, before = _ident(kpi.panel), prior_period_sql("c.data_period")
            panel = self._panel(f"""
                select c.data_period, s.{key},
                       sum(case when s.period = c.data_period then s.{ytd} end) * {scale}
                           as cur_v,
                       sum(case when s.period = {before} then s.{ytd} end) * {scale}
                           as prior_v
                from ({latest.replace("max(s.period)", "max(s.period) as data_period")}) as c
                join {src} as s
                    on {w} and (s.period = c.data_period or s.period = {before})
                group by c.data_period, s.{key}""")
        return self._with_panel(base, panel)

    def _milestone(self, i: int, kpi: Kpi, src: str) -> str:
        """A task's latest milestone status up to the period."""
        task = self.bind(f"k{i}_task", kpi.task)
        return f"""
        select s.period as data_period, s.status as milestone_status, s.status_date
        from {src} as s
        where s.task = {task} and s.period = (
            select max(s.period) from {src} as s where s.task = {task} and s.period <= :period
        )"""

    def _flow_observation(
        self, i: int, kpi: Kpi, src: str, cols: dict[str, str], scale: str
    ) -> str:
        """Flow aggregations (distinct units, sum or ratio of months): the data reach the
        latest period the feed has loaded this year; the same months a year before."""
        agg = kpi.aggregation
        feed = self.bind(f"k{i}_feedp", kpi.feed)
        fresh = (
            "(select max(b.period) as data_period from audit_load_batch as b "
            f"where b.feed = {feed} and b.is_current "
            "and b.period between :year_start and :period)"
        )
        w = self.where(i, kpi, "s")
        # One pass over the source rows from the previous January to the data period.
        this_year = "s.period between :year_start and f.data_period"
        in_month = "s.period = f.data_period"
        last_year = f"s.period between :prior_year_start and {prior_period_sql('f.data_period')}"
        if agg == "count_year":  # units seen this year up to the data period, not after it
            key = cols["key"]

            def count(cond: str) -> str:
                return f"count(distinct case when {cond} then s.{key} end)"

            month_sql, ytd_sql, prior_sql = count(in_month), count(this_year), count(last_year)
        elif agg == "sum_months":
            value = cols["value"]

            def total(cond: str) -> str:
                return f"sum(case when {cond} then s.{value} end) * {scale}"

            month_sql = f"coalesce({total(in_month)}, 0)"
            ytd_sql = f"coalesce({total(this_year)}, 0)"
            prior_sql = total(last_year)
        else:  # ratio_months
            num, den = cols["numerator"], cols["denominator"]

            def ratio(cond: str) -> str:
                return (
                    f"sum(case when {cond} then s.{num} end) * {_num(kpi.factor)} * {scale}"
                    f" / nullif(sum(case when {cond} then s.{den} end), 0)"
                )

            month_sql, ytd_sql, prior_sql = ratio(in_month), ratio(this_year), ratio(last_year)
        rows = f"""from {fresh} as f
        left join {src} as s
            on {w} and s.period between :prior_year_start and f.data_period
        where f.data_period is not null"""
        base = f"""
        select f.data_period, {month_sql} as actual_month, {ytd_sql} as actual_ytd,
               null as yoy_month_pct, null as yoy_ytd_pct, {prior_sql} as prior_ytd
        {rows}
        group by f.data_period"""
        panel = None
        if kpi.panel:
            key = _ident(kpi.panel)
            panel = self._panel(f"""
                select f.data_period, s.{key}, {total(this_year)} as cur_v,
                       {total(last_year)} as prior_v
                {rows}
                group by f.data_period, s.{key}""")
        return self._with_panel(base, panel)

    def constants(self, i: int, kpi: Kpi) -> str:
        """The KPI's catalog constants: target, pace and the status it takes without data."""
        target = kpi.target
        small = 1 if self.catalog.status.is_small(kpi) else 0
        count = 1 if self.catalog.status.is_count(kpi) else 0
        basis = pace_basis(kpi, self.seasonal.get(kpi.id))
        return (
            f"{self.bind(f'k{i}_id', kpi.id)} as kpi_id, "
            f"'{kpi.kind}' as kind, "
            f"cast({_num(target.value if target else None)} as numeric) as target_value, "
            f"'{target.comparator if target else ''}' as comparator, "
            f"'{kpi.yoy}' as yoy_basis, "
            f"cast('{_ident(kpi.pace.kind)}' as varchar(16)) as pace, "
            f"cast({self.bind(f'k{i}_basis', basis)} as varchar(128)) as pace_basis, "
            f"{int(kpi.pace.due)} as due_month, {small} as is_small, {count} as is_count, "
            f"cast({self.bind(f'k{i}_nodata', no_data_status(kpi, self.period))} "
            "as varchar(16)) as no_data_status"
        )

    def branch(self, i: int, kpi: Kpi) -> str:
        usable = kpi.source is not None and kpi.source in self.views
        if kpi.source is not None and not usable:
            self.skipped.append(kpi.id)
        consts = self.constants(i, kpi)
        if not usable:
            return (
                f"    select {consts}, cast(null as varchar(7)) as data_period, "
                "cast(null as integer) as months_elapsed, "
                "cast(null as numeric) as actual_month, cast(null as numeric) as actual_ytd, "
                "cast(null as numeric) as prior_ytd, cast(null as numeric) as comparable_ytd, "
                "cast(null as numeric) as yoy_month_pct, "
                "cast(null as numeric) as yoy_ytd_pct, "
                "cast(null as varchar) as milestone_status, "
                "cast(null as varchar) as status_date, cast(null as numeric) as pace_share, "
                "cast('' as varchar) as source_batches, "
                "cast(null as varchar(16)) as validation_state, "
                f"cast(null as {self.timestamp}) as data_loaded_at"
            )
        inner, since = self.observation(i, kpi)
        numbers = (
            "actual_month",
            "actual_ytd",
            "prior_ytd",
            "comparable_ytd",
            "yoy_month_pct",
            "yoy_ytd_pct",
        )
        texts = ("milestone_status", "status_date")
        # Explicit casts: PostgreSQL types an untyped null of a subquery as text.
        if kpi.aggregation == "milestone":
            values = ", ".join(
                [f"cast(null as numeric) as {c}" for c in numbers]
                + [f"cast(obs.{c} as varchar) as {c}" for c in texts]
            )
        else:
            values = ", ".join(
                [f"cast(obs.{c} as numeric) as {c}" for c in numbers]
                + [f"cast(null as varchar) as {c}" for c in texts]
            )
        ids, worst, loaded = self.batches(i, kpi, since)
        return f"""    select {consts}, cast(obs.data_period as varchar(7)) as data_period,
        cast(substr(obs.data_period, 6, 2) as integer) as months_elapsed,
        {values}, cast({self.pace_share(kpi)} as numeric) as pace_share,
        cast(coalesce({ids}, '') as varchar) as source_batches,
        cast({worst} as varchar(16)) as validation_state,
        {loaded} as data_loaded_at
    from (select 1 as one) as k
    left join ({inner}
    ) as obs on 1 = 1"""

    def build(self) -> SnapshotQuery:
        branches = "\n    union all\n".join(self.branch(i, kpi) for i, kpi in enumerate(self.kpis))
        milestone_cases = " ".join(
            f"when {self.bind(f'ms{j}_from', src)} then {self.bind(f'ms{j}_to', dst)}"
            for j, (src, dst) in enumerate(self.catalog.status.milestone.items())
        )
        # The whole events expected to date (floor; expected is never negative, so SQLite's
        # truncating cast is a floor; PostgreSQL's cast would round).
        whole = "expected_to_date + 0.000001"
        whole = f"floor({whole})" if self.dialect == "postgresql" else f"cast({whole} as integer)"
        sql = "with " + _STATUS_SQL.format(
            branches=branches, milestone_cases=milestone_cases, whole_expected=whole
        )
        return SnapshotQuery(sql=sql, params=self.params, skipped=self.skipped)


def build_query(
    catalog: Catalog,
    period: str | Period,
    dialect: str,
    views: set[str],
    kpis: list[Kpi] | None = None,
    seasonal: dict[str, tuple[tuple[float, ...] | None, str]] | None = None,
) -> SnapshotQuery:
    """The snapshot statement of ``period`` (all KPIs, or ``kpis``) for a warehouse of
    ``dialect`` whose views are ``views`` (KPIs whose view is missing get no data);
    ``seasonal`` gives the shares of seasonal paces by KPI (absent: linear)."""
    p = period if isinstance(period, Period) else Period.parse(period)
    return _Builder(catalog, p, dialect, views, kpis or catalog.kpis, seasonal or {}).build()
