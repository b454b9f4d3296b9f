with openings as (
    select * from core_ledger_openings
),

by_year_and_type as (
    select
        substr(period, 1, 4) as year,
        opening_type,
        count(*) as openings
    from openings
    group by substr(period, 1, 4), opening_type
),

final as (
    select * from by_year_and_type
)

select * from final
