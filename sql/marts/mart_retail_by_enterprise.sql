-- One row per reporting unit and commodity category: the panel a like-for-like (可比口径)
-- YoY is computed over (the units present in both periods).
with above_quota as (
    select * from core_retail_above_quota
),

by_enterprise as (
    select
        period,
        uscc,
        max(enterprise_name) as enterprise_name,
        category_code,
        max(category_name) as category_name,
        sum(value_month) as value_month,
        sum(value_ytd) as value_ytd,
        max(unit) as unit
    from above_quota
    group by period, uscc, category_code
)

select * from by_enterprise
