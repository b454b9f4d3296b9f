-- Target KPIs with data in the latest period, furthest behind their pace first.
with snapshots as (
    select * from mart_indicator_snapshot_latest
),

latest_period as (
    select max(period) as period from snapshots where data_period is not null
),

with_data as (
    select
        snapshots.measure_no,
        snapshots.kpi_id,
        snapshots.name,
        snapshots.unit,
        snapshots.actual_ytd,
        snapshots.target_value,
        snapshots.pace_label,
        snapshots.expected_to_date,
        snapshots.completion_ratio,
        snapshots.status
    from snapshots
    inner join latest_period on latest_period.period = snapshots.period
    where snapshots.kind = 'target'
        and snapshots.data_period is not null
),

final as (
    select * from with_data
)

select * from final order by completion_ratio, measure_no
