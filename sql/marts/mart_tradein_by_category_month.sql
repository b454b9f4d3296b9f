with transactions as (
    select * from core_tradein_transactions
),

by_category as (
    select
        period,
        category_group,
        category,
        count(distinct order_id) as transactions,
        count(*) as items,
        sum(price) as sales_yuan,
        sum(subsidy) as subsidy_yuan
    from transactions
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
