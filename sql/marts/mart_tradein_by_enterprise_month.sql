with transactions as (
    select * from core_tradein_transactions
),

by_enterprise as (
    select
        period,
        uscc as enterprise_uscc,
        max(enterprise_name) as enterprise_name,
        category_group,
        count(distinct order_id) as transactions,
        sum(price) as sales_yuan,
        sum(subsidy) as subsidy_yuan
    from transactions
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
