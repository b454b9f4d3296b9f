-- Revision summary per indicator: periods and figures published, how many were revised
-- (latest ≠ first published), the share of periods revised and the mean absolute revision.
with versions as (
    select * from stg_revision_versions
),

latest as (
    select
        feed, stream, indicator, period, versions,
        abs(revision_value) as abs_revision,
        abs(revision_pct) as abs_revision_pct,
        case when versions > 1 and revision_value <> 0 then 1 else 0 end as revised
    from versions
    where is_latest = 1
),

per_period as (
    select feed, stream, indicator, period, max(revised) as revised
    from latest
    group by feed, stream, indicator, period
),

periods as (
    select
        feed, stream, indicator, count(*) as periods, sum(revised) as periods_revised
    from per_period
    group by feed, stream, indicator
),

figures as (
    select
        feed, stream, indicator,
        count(*) as figures,
        sum(revised) as figures_revised,
        avg(abs_revision) as mean_abs_revision,
        avg(abs_revision_pct) as mean_abs_revision_pct,
        max(abs_revision) as max_abs_revision
    from latest
    where abs_revision is not null
    group by feed, stream, indicator
)

select
    p.feed, p.stream, p.indicator, p.periods, p.periods_revised,
    round(1.0 * p.periods_revised / p.periods, 4) as share_periods_revised,
    f.figures, f.figures_revised, f.mean_abs_revision, f.mean_abs_revision_pct,
    f.max_abs_revision
from periods as p
left join figures as f
    on p.feed = f.feed and p.stream = f.stream and p.indicator = f.indicator
