with openings as (
    select * from core_ledger_openings
),

by_period_and_type as (
    select
        period,
        substr(period, 1, 4) as year,
        opening_type,
        count(*) as openings
    from openings
    group by period, opening_type
),

final as (
    select * from by_period_and_type
)

select * from final
