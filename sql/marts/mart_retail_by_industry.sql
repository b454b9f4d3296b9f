with above_quota as (
    select * from core_retail_above_quota
),

by_industry as (
    select
        period,
        industry_code,
        max(industry_name) as industry_name,
        count(distinct uscc) as enterprises,
        sum(value_month) as value_month,
        sum(value_ytd) as value_ytd,
        max(unit) as unit
    from above_quota
    group by period, industry_code
)

select * from by_industry
