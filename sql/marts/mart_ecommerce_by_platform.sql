with platform_sales as (
    select * from core_ecommerce_platform_sales
),

by_platform as (
    select
        period,
        platform,
        count(distinct uscc) as enterprises,
        round(sum(online_sales), 2) as online_sales,
        sum(live_sessions) as live_sessions,
        round(sum(live_sales), 2) as live_sales,
        sum(orders) as orders,
        max(unit) as unit
    from platform_sales
    group by period, platform
),

final as (
    select
        by_platform.*,
        round(live_sales * 100.0 / nullif(online_sales, 0), 2) as live_share_pct,
        round(online_sales * 10000.0 / nullif(orders, 0), 2) as avg_order_value_yuan
    from by_platform
)

select * from final
