with above_quota as (
    select * from core_retail_above_quota
),

by_category as (
    select
        period,
        category_code,
        max(category_name) as category_name,
        count(distinct uscc) as enterprises,
        sum(value_month) as value_month,
        sum(value_ytd) as value_ytd,
        max(unit) as unit
    from above_quota
    group by period, category_code
)

select * from by_category
