with quarantine as (
    select * from audit_quarantine
    where feed = 'tradein_transactions'
),

batches as (
    select batch_id, status, is_current from audit_load_batch
    where feed = 'tradein_transactions'
),

open_batches as (
    select batch_id, is_current
    from batches
    where status <> 'superseded'
),

names as (
    select uscc, max(enterprise_name) as enterprise_name
    from core_tradein_monthly
    group by uscc
),

cases as (
    select
        quarantine.period,
        quarantine.entity_key as enterprise_uscc,
        quarantine.failed_expectations,
        quarantine.batch_id,
        open_batches.is_current
    from quarantine
    inner join open_batches on open_batches.batch_id = quarantine.batch_id
),

final as (
    select
        cases.period,
        cases.enterprise_uscc,
        names.enterprise_name,
        cases.failed_expectations,
        count(*) as rows_quarantined,
        cases.batch_id,
        cases.is_current as batch_is_current
    from cases
    left join names on names.uscc = cases.enterprise_uscc
    group by
        cases.period,
        cases.enterprise_uscc,
        names.enterprise_name,
        cases.failed_expectations,
        cases.batch_id,
        cases.is_current
)

select * from final
