with district_totals as (
    select * from core_retail_district_totals
),

total as (
    select period, period_label, region_code, value_month, value_ytd,
           yoy_month_pct, yoy_ytd_pct, unit, batch_id
    from district_totals
    where indicator_code = 'retail_total'
),

above_quota as (
    select period, value_month, value_ytd, yoy_month_pct, yoy_ytd_pct
    from district_totals
    where indicator_code = 'retail_above_quota'
),

final as (
    select
        total.period,
        total.period_label,
        total.region_code,
        total.unit,
        total.value_month as retail_month,
        total.value_ytd as retail_ytd,
        total.yoy_month_pct as retail_yoy_month_pct,
        total.yoy_ytd_pct as retail_yoy_ytd_pct,
        above_quota.value_month as above_quota_month,
        above_quota.value_ytd as above_quota_ytd,
        above_quota.yoy_month_pct as above_quota_yoy_month_pct,
        above_quota.yoy_ytd_pct as above_quota_yoy_ytd_pct,
        round(above_quota.value_ytd * 100.0 / nullif(total.value_ytd, 0), 2)
            as above_quota_share_ytd_pct,
        total.batch_id
    from total
    left join above_quota on above_quota.period = total.period
)

select * from final
