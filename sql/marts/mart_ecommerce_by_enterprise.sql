-- One row per monitored enterprise and platform: the panel a like-for-like (可比口径) YoY
-- of the monitored enterprises' sales is computed over.
with platform_sales as (
    select * from core_ecommerce_platform_sales
),

by_enterprise as (
    select
        period,
        uscc,
        max(enterprise_name) as enterprise_name,
        platform,
        sum(online_sales) as online_sales,
        sum(live_sessions) as live_sessions,
        sum(live_sales) as live_sales,
        sum(orders) as orders,
        max(unit) as unit
    from platform_sales
    group by period, uscc, platform
)

select * from by_enterprise
