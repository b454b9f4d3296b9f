-- Status of every KPI of the latest period with data, counted per measure.
with snapshots as (
    select * from mart_indicator_snapshot_latest
),

latest_period as (
    select max(period) as period from snapshots where data_period is not null
),

current_snapshots as (
    select snapshots.*
    from snapshots
    inner join latest_period on latest_period.period = snapshots.period
),

final as (
    select
        measure_no,
        count(*) as kpis,
        sum(case when status = '已完成' then 1 else 0 end) as done,
        sum(case when status in ('正常推进', '达标', '未到期') then 1 else 0 end) as on_track,
        sum(case when status in ('进度滞后', '严重滞后', '未完成', '未达标', '逾期') then 1 else 0 end)
            as behind,
        sum(case when status in ('暂无数据', '与2月合并发布') then 1 else 0 end) as no_data
    from current_snapshots
    group by measure_no
)

select * from final order by measure_no
