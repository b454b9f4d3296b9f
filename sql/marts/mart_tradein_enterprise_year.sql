-- Amounts, months and names from the monthly rollup. The year's distinct orders need the
-- transactions (an order id may recur in another month), so they come from a grouped
-- left join on the view's key: a query that does not read `transactions` (the snapshot's
-- count of enterprises) has the join removed by PostgreSQL and never scans them.
with monthly as (
    select * from core_tradein_monthly
),

by_enterprise as (
    select
        substr(period, 1, 4) as year,
        uscc as enterprise_uscc,
        max(enterprise_name) as enterprise_name,
        sum(sales_yuan) as sales_yuan,
        sum(subsidy_yuan) as subsidy_yuan,
        count(distinct period) as months,
        max(period) as last_period
    from monthly
    group by substr(period, 1, 4), uscc
),

orders as (
    select
        substr(period, 1, 4) as year,
        coalesce(uscc, '') as uscc_key,
        count(distinct order_id) as transactions
    from core_tradein_transactions
    group by substr(period, 1, 4), coalesce(uscc, '')
),

final as (
    select
        by_enterprise.year,
        by_enterprise.enterprise_uscc,
        by_enterprise.enterprise_name,
        round(by_enterprise.sales_yuan, 2) as sales_yuan,
        round(by_enterprise.subsidy_yuan, 2) as subsidy_yuan,
        orders.transactions,
        by_enterprise.months,
        by_enterprise.last_period
    from by_enterprise
    left join orders
        on orders.year = by_enterprise.year
        and orders.uscc_key = coalesce(by_enterprise.enterprise_uscc, '')
)

select * from final
