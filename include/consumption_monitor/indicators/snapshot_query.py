"""The snapshot query: every KPI of the catalog for one period, computed by one SQL statement.

Each KPI becomes one branch of a ``union all`` that reads its source view with the catalog's
aggregation (year-to-date value, sum or ratio of months, count of the year, latest milestone
status) and carries its target and pace; the outer CTEs derive expected-to-date, completion
ratio and status, so the database does all the arithmetic. Identifiers (views, columns) come
from the checked catalog and are validated here; values (periods, filters, task names) are
bound parameters. Works unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from consumption_monitor.common.periods import Period
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
        end as expected_to_date
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
            when prior_ytd = 0 then null
            else round((actual_ytd - prior_ytd) * 100.0 / prior_ytd, 2)
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
        yoy_month_pct,
        coalesce(yoy_ytd_pct, yoy_computed_pct) as yoy_ytd_pct,
        target_value,
        expected_to_date,
        completion_ratio,
        milestone_status,
        status_date,
        source_batches,
        validation_state,
        data_loaded_at,
        case
            when kind = 'milestone' then coalesce(
                case milestone_status {milestone_cases} end, '暂无数据'
            )
            when data_period is null or actual_ytd is null then '暂无数据'
            when kind = 'indicator' then null
            when comparator = '>' and actual_ytd > target_value then '已完成'
            when comparator <> '>' and actual_ytd >= target_value then '已完成'
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


@dataclass
class SnapshotQuery:
    """The statement and its parameters for one period; ``skipped`` KPIs have no source."""

    sql: str
    params: dict[str, Any]
    skipped: list[str] = field(default_factory=list)


class _Builder:
    def __init__(
        self, catalog: Catalog, period: Period, dialect: str, views: set[str], kpis: list[Kpi]
    ):
        self.catalog, self.period, self.dialect, self.views = catalog, period, dialect, views
        self.kpis = kpis
        self.timestamp = "timestamp with time zone" if dialect == "postgresql" else "varchar"
        self.params: dict[str, Any] = {
            "period": str(period),
            "year": f"{period.year:04d}",
            "year_start": f"{period.year:04d}-01",
            "prior_year_start": f"{period.year - 1:04d}-01",
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
        month = "cast(substr(obs.data_period, 6, 2) as integer)"
        if kpi.pace == "level" or kpi.target is None:
            return "1.0"
        if kpi.pace == "linear":
            return f"({month} / 12.0)"
        cases = " ".join(f"when {m} then {_num(s)}" for m, s in enumerate(kpi.pace, start=1))
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

    def _ytd_value(self, i: int, kpi: Kpi, src: str, cols: dict[str, str], scale: str) -> str:
        """Published year-to-date series: the latest period of the year, and a year before."""
        w = self.where(i, kpi, "s")
        month = f"sum(s.{cols['month']}) * {scale}" if "month" in cols else "null"
        yoy_m = f"max(s.{cols['yoy_month']})" if "yoy_month" in cols else "null"
        yoy_y = f"max(s.{cols['yoy_ytd']})" if "yoy_ytd" in cols else "null"
        return f"""
        select cur.*, prior.prior_ytd
        from (
            select s.period as data_period, {month} as actual_month,
                   sum(s.{cols["ytd"]}) * {scale} as actual_ytd,
                   {yoy_m} as yoy_month_pct, {yoy_y} as yoy_ytd_pct
            from {src} as s
            where {w} and s.period = (
                select max(s.period) from {src} as s
                where {w} and s.period between :year_start and :period
            )
            group by s.period
        ) as cur
        left join (
            select s.period, sum(s.{cols["ytd"]}) * {scale} as prior_ytd
            from {src} as s
            where {w} and s.period between :prior_year_start and :period
            group by s.period
        ) as prior on prior.period = {prior_period_sql("cur.data_period")}"""

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
        """Flow aggregations (count of the year, sum or ratio of months): the data reach the
        latest period the feed has loaded this year."""
        agg = kpi.aggregation
        feed = self.bind(f"k{i}_feedp", kpi.feed)
        fresh = (
            "(select max(b.period) as data_period from audit_load_batch as b "
            f"where b.feed = {feed} and b.is_current "
            "and b.period between :year_start and :period)"
        )
        w = self.where(i, kpi, "s")
        if agg == "count_year":
            value = "count(*)"
            in_month = "null"
            ytd = (
                f"(select {value} from {src} as s where {w} and cast(s.year as varchar(4)) = :year)"
            )
            prior = (
                f"(select {value} from {src} as s where {w} "
                "and cast(s.year as varchar(4)) = "
                "cast(cast(:year as integer) - 1 as varchar(4)))"
            )
            return self._flow(fresh, in_month, ytd, prior)
        # One pass over the source rows from the previous January to the data period.
        this_year = "s.period between :year_start and f.data_period"
        in_month = "s.period = f.data_period"
        last_year = f"s.period between :prior_year_start and {prior_period_sql('f.data_period')}"
        if agg == "sum_months":
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
        sql = f"""
        select f.data_period, {month_sql} as actual_month, {ytd_sql} as actual_ytd,
               null as yoy_month_pct, null as yoy_ytd_pct, {prior_sql} as prior_ytd
        from {fresh} as f
        left join {src} as s
            on {w} and s.period between :prior_year_start and f.data_period
        where f.data_period is not null
        group by f.data_period"""
        return sql

    @staticmethod
    def _flow(fresh: str, in_month: str, ytd: str, prior: str) -> str:
        return f"""
        select f.data_period, {in_month} as actual_month, {ytd} as actual_ytd,
               null as yoy_month_pct, null as yoy_ytd_pct, {prior} as prior_ytd
        from {fresh} as f
        where f.data_period is not null"""

    def branch(self, i: int, kpi: Kpi) -> str:
        usable = kpi.source is not None and kpi.source in self.views
        if kpi.source is not None and not usable:
            self.skipped.append(kpi.id)
        target = kpi.target
        consts = (
            f"{self.bind(f'k{i}_id', kpi.id)} as kpi_id, "
            f"'{kpi.kind}' as kind, "
            f"cast({_num(target.value if target else None)} as numeric) as target_value, "
            f"'{target.comparator if target else ''}' as comparator, "
            f"'{kpi.yoy}' as yoy_basis"
        )
        if not usable:
            return (
                f"    select {consts}, cast(null as varchar(7)) as data_period, "
                "cast(null as integer) as months_elapsed, "
                "cast(null as numeric) as actual_month, cast(null as numeric) as actual_ytd, "
                "cast(null as numeric) as prior_ytd, cast(null as numeric) as yoy_month_pct, "
                "cast(null as numeric) as yoy_ytd_pct, "
                "cast(null as varchar) as milestone_status, "
                "cast(null as varchar) as status_date, cast(null as numeric) as pace_share, "
                "cast('' as varchar) as source_batches, "
                "cast(null as varchar(16)) as validation_state, "
                f"cast(null as {self.timestamp}) as data_loaded_at"
            )
        inner, since = self.observation(i, kpi)
        numbers = ("actual_month", "actual_ytd", "prior_ytd", "yoy_month_pct", "yoy_ytd_pct")
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
        sql = "with " + _STATUS_SQL.format(branches=branches, milestone_cases=milestone_cases)
        return SnapshotQuery(sql=sql, params=self.params, skipped=self.skipped)


def build_query(
    catalog: Catalog,
    period: str | Period,
    dialect: str,
    views: set[str],
    kpis: list[Kpi] | None = None,
) -> SnapshotQuery:
    """The snapshot statement of ``period`` (all KPIs, or ``kpis``) for a warehouse of
    ``dialect`` whose views are ``views`` (KPIs whose view is missing get no data)."""
    p = period if isinstance(period, Period) else Period.parse(period)
    return _Builder(catalog, p, dialect, views, kpis or catalog.kpis).build()
