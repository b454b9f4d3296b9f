-- Every published version of every figure of the monthly aggregate streams, in long form:
-- one row per (feed, stream, period, entity, indicator, batch), numbered in the order the
-- batches were loaded, with the first and the latest published value beside it. The one
-- home of the revision logic: mart_revisions shows it, mart_revision_summary sums it up.
-- Row-level streams (cases, events, transactions) have no stable key across versions.
with batches as (
    select batch_id, revision, loaded_at
    from audit_load_batch
    where loaded_at is not null
),

retail_totals as (
    select
        'retail_monthly' as feed, 'district_totals' as stream, period,
        region_code || '|' || indicator_code as entity_key, indicator_code as grp,
        batch_id, value_month, value_ytd, yoy_month_pct, yoy_ytd_pct
    from stg_retail_district_totals
),

retail_enterprises as (
    select
        'retail_monthly' as feed, 'above_quota' as stream, period,
        uscc || '|' || category_code as entity_key, batch_id, value_month, value_ytd
    from stg_retail_above_quota
),

online_district as (
    select
        'ecommerce_monthly' as feed, 'district_online' as stream, period,
        region_code as entity_key, batch_id, online_retail_ytd, online_retail_yoy_ytd_pct,
        physical_online_retail_ytd, physical_online_retail_yoy_ytd_pct
    from stg_ecommerce_district_online
),

online_platforms as (
    select
        'ecommerce_monthly' as feed, 'platform_sales' as stream, period,
        uscc || '|' || platform as entity_key, batch_id, online_sales, live_sales,
        live_sessions, orders
    from stg_ecommerce_platform_sales
),

employment as (
    select
        'employment_monthly' as feed, 'monthly_figures' as stream, period,
        region_code as entity_key, batch_id, urban_new_jobs_month, urban_new_jobs_ytd,
        ui_benefits_paid_month, ui_benefits_paid_ytd
    from stg_employment_monthly_figures
),

long_values as (
    select feed, stream, period, entity_key, grp || '.value_month' as indicator, batch_id,
        value_month as value from retail_totals
    union all
    select feed, stream, period, entity_key, grp || '.value_ytd', batch_id, value_ytd
    from retail_totals
    union all
    select feed, stream, period, entity_key, grp || '.yoy_month_pct', batch_id, yoy_month_pct
    from retail_totals
    union all
    select feed, stream, period, entity_key, grp || '.yoy_ytd_pct', batch_id, yoy_ytd_pct
    from retail_totals
    union all
    select feed, stream, period, entity_key, 'value_month', batch_id, value_month
    from retail_enterprises
    union all
    select feed, stream, period, entity_key, 'value_ytd', batch_id, value_ytd
    from retail_enterprises
    union all
    select feed, stream, period, entity_key, 'online_retail_ytd', batch_id, online_retail_ytd
    from online_district
    union all
    select feed, stream, period, entity_key, 'online_retail_yoy_ytd_pct', batch_id,
        online_retail_yoy_ytd_pct
    from online_district
    union all
    select feed, stream, period, entity_key, 'physical_online_retail_ytd', batch_id,
        physical_online_retail_ytd
    from online_district
    union all
    select feed, stream, period, entity_key, 'physical_online_retail_yoy_ytd_pct', batch_id,
        physical_online_retail_yoy_ytd_pct
    from online_district
    union all
    select feed, stream, period, entity_key, 'online_sales', batch_id, online_sales
    from online_platforms
    union all
    select feed, stream, period, entity_key, 'live_sales', batch_id, live_sales
    from online_platforms
    union all
    select feed, stream, period, entity_key, 'live_sessions', batch_id, live_sessions
    from online_platforms
    union all
    select feed, stream, period, entity_key, 'orders', batch_id, orders
    from online_platforms
    union all
    select feed, stream, period, entity_key, 'urban_new_jobs_month', batch_id,
        urban_new_jobs_month
    from employment
    union all
    select feed, stream, period, entity_key, 'urban_new_jobs_ytd', batch_id, urban_new_jobs_ytd
    from employment
    union all
    select feed, stream, period, entity_key, 'ui_benefits_paid_month', batch_id,
        ui_benefits_paid_month
    from employment
    union all
    select feed, stream, period, entity_key, 'ui_benefits_paid_ytd', batch_id,
        ui_benefits_paid_ytd
    from employment
),

published as (
    select v.*, b.revision, b.loaded_at as published_at
    from long_values as v
    inner join batches as b on v.batch_id = b.batch_id
),

numbered as (
    select
        p.*,
        row_number() over figure as version,
        count(*) over whole as versions,
        lag(p.value) over figure as previous_value,
        first_value(p.value) over whole as first_published_value,
        last_value(p.value) over whole as latest_value
    from published as p
    window
        figure as (
            partition by p.feed, p.stream, p.period, p.entity_key, p.indicator
            order by p.published_at, p.revision
        ),
        whole as (
            partition by p.feed, p.stream, p.period, p.entity_key, p.indicator
            order by p.published_at, p.revision
            rows between unbounded preceding and unbounded following
        )
)

select
    feed, stream, period, entity_key, indicator, version, versions, batch_id, revision,
    published_at, value, previous_value,
    value - previous_value as change,
    case when previous_value <> 0
        then 100.0 * (value - previous_value) / abs(previous_value) end as change_pct,
    first_published_value, latest_value,
    latest_value - first_published_value as revision_value,
    case when first_published_value <> 0
        then 100.0 * (latest_value - first_published_value) / abs(first_published_value)
    end as revision_pct,
    case when version = versions then 1 else 0 end as is_latest
from numbered
