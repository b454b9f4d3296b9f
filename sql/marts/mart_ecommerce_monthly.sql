with district_online as (
    select * from core_ecommerce_district_online
),

platform_sales as (
    select * from core_ecommerce_platform_sales
),

monitored as (
    select
        period,
        count(distinct uscc) as enterprises,
        round(sum(online_sales), 2) as monitored_sales,
        sum(live_sessions) as live_sessions,
        round(sum(live_sales), 2) as live_sales,
        sum(orders) as orders
    from platform_sales
    group by period
),

final as (
    select
        district_online.period,
        district_online.period_label,
        district_online.region_code,
        district_online.unit,
        district_online.online_retail_ytd,
        district_online.online_retail_yoy_ytd_pct,
        district_online.physical_online_retail_ytd,
        district_online.physical_online_retail_yoy_ytd_pct,
        round(
            district_online.physical_online_retail_ytd * 100.0
            / nullif(district_online.online_retail_ytd, 0), 2
        ) as physical_share_ytd_pct,
        monitored.enterprises,
        monitored.monitored_sales,
        monitored.live_sessions,
        monitored.live_sales,
        round(monitored.live_sales * 100.0 / nullif(monitored.monitored_sales, 0), 2)
            as live_share_pct,
        monitored.orders,
        district_online.batch_id
    from district_online
    left join monitored on monitored.period = district_online.period
)

select * from final
