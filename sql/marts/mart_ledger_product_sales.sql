with sales as (
    select * from core_ledger_product_sales
),

by_period as (
    select
        period,
        substr(period, 1, 4) as year,
        count(*) as products,
        sum(sales_month) as sales_month
    from sales
    group by period
),

year_to_date as (
    select
        by_period.period,
        sum(earlier.sales_month) as sales_ytd
    from by_period
    inner join by_period as earlier
        on earlier.year = by_period.year
        and earlier.period <= by_period.period
    group by by_period.period
),

final as (
    select
        by_period.period,
        by_period.year,
        by_period.products,
        by_period.sales_month,
        year_to_date.sales_ytd,
        5.0 as target_year,
        round(year_to_date.sales_ytd * 100.0 / 5.0, 2) as completion_pct
    from by_period
    inner join year_to_date on year_to_date.period = by_period.period
)

select * from final
