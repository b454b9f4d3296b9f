-- From the monthly rollup (see mart_tradein_by_category_month): within a period the
-- distinct orders are the rows.
with monthly as (
    select * from core_tradein_monthly
),

by_enterprise as (
    select
        period,
        uscc as enterprise_uscc,
        max(enterprise_name) as enterprise_name,
        category_group,
        sum(items) as transactions,
        sum(sales_yuan) as sales_yuan,
        sum(subsidy_yuan) as subsidy_yuan
    from monthly
    group by period, uscc, category_group
),

final as (
    select
        period,
        enterprise_uscc,
        enterprise_name,
        category_group,
        transactions,
        round(sales_yuan, 2) as sales_yuan,
        round(subsidy_yuan, 2) as subsidy_yuan,
        round(sales_yuan * 1.0 / nullif(subsidy_yuan, 0), 2) as sales_per_subsidy_yuan
    from by_enterprise
)

select * from final
