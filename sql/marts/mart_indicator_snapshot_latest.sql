with snapshots as (
    select * from mart_indicator_snapshot
),

replaced as (
    select distinct previous_snapshot_id as snapshot_id
    from snapshots
    where previous_snapshot_id is not null
),

current_ones as (
    select snapshots.*
    from snapshots
    left join replaced on replaced.snapshot_id = snapshots.snapshot_id
    where replaced.snapshot_id is null
),

ranked as (
    select
        current_ones.*,
        row_number() over (
            partition by kpi_id, period
            order by computed_at desc, snapshot_id desc
        ) as recency
    from current_ones
),

latest as (
    select
        snapshot_id, kpi_id, period, measure_no, kind, name, unit,
        actual_month, actual_ytd, prior_ytd, yoy_month_pct, yoy_ytd_pct, yoy_basis,
        comparable_ytd, target_value, target_comparator, months_elapsed, pace, pace_basis,
        expected_to_date,
        completion_ratio, status, milestone_status, status_date,
        data_period, data_loaded_at, source_batches, validation_state,
        previous_snapshot_id, computed_at
    from ranked
    where recency = 1
),

-- The labels the report and the workbook print (one home for them).
labelled as (
    select
        latest.*,
        case yoy_basis
            when 'computed' then '可比口径计算'
            when 'published' then '公布值'
        end as yoy_label,
        case pace
            when 'linear' then '线性'
            when 'seasonal' then '季节'
            when 'schedule' then '按计划'
            when 'level' then '全年保持'
            when 'year_end' then '年底完成'
            when 'ledger' then '台账'
        end as pace_label
    from latest
)

select * from labelled
