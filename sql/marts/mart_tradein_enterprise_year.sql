with transactions as (
    select * from core_tradein_transactions
),

with_year as (
    select
        substr(period, 1, 4) as year,
        uscc,
        enterprise_name,
        order_id,
        period,
        price,
        subsidy
    from transactions
),

by_enterprise as (
    select
        year,
        uscc as enterprise_uscc,
        max(enterprise_name) as enterprise_name,
        sum(price) as sales_yuan,
        sum(subsidy) as subsidy_yuan,
        count(distinct order_id) as transactions,
        count(distinct period) as months,
        max(period) as last_period
    from with_year
    group by year, uscc
),

final as (
    select
        year,
        enterprise_uscc,
        enterprise_name,
        round(sales_yuan, 2) as sales_yuan,
        round(subsidy_yuan, 2) as subsidy_yuan,
        transactions,
        months,
        last_period
    from by_enterprise
)

select * from final
