-- District retail sales: month, year to date and the published growth rates, by period.
with retail as (
    select * from mart_retail_monthly
),

final as (
    select
        period,
        period_label,
        retail_month,
        retail_ytd,
        retail_yoy_month_pct,
        retail_yoy_ytd_pct,
        above_quota_share_ytd_pct
    from retail
)

select * from final order by period
