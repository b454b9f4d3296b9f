with snapshots as (
    select * from mart_indicator_snapshot
),

ranked as (
    select
        snapshots.*,
        row_number() over (
            partition by kpi_id, period
            order by computed_at desc, snapshot_id desc
        ) as recency
    from snapshots
),

latest as (
    select
        snapshot_id, kpi_id, period, measure_no, name, unit,
        actual_month, actual_ytd, yoy_month_pct, yoy_ytd_pct, yoy_basis,
        target_value, target_comparator, expected_to_date, completion_ratio, status,
        source_batches, validation_state, computed_at
    from ranked
    where recency = 1
)

select * from latest
