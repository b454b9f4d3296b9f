-- Read from the monthly rollup, not the transactions: the same figures from thousands of
-- rows instead of millions. Order ids are unique within a period (the key of
-- core_tradein_transactions), so a period's distinct orders are its rows.
with monthly as (
    select * from core_tradein_monthly
),

by_category as (
    select
        period,
        category_group,
        category,
        sum(items) as transactions,
        sum(items) as items,
        sum(sales_yuan) as sales_yuan,
        sum(subsidy_yuan) as subsidy_yuan
    from monthly
    group by period, category_group, category
),

final as (
    select
        period,
        category_group,
        category,
        transactions,
        items,
        round(sales_yuan, 2) as sales_yuan,
        round(subsidy_yuan, 2) as subsidy_yuan,
        round(sales_yuan * 1.0 / nullif(subsidy_yuan, 0), 2) as sales_per_subsidy_yuan
    from by_category
)

select * from final
