-- Revision analysis: every published version of every figure of the monthly aggregate
-- streams (first published value, each later one, the latest, the change and the total
-- revision in value and %, when each was loaded). Logic in stg_revision_versions.
with versions as (
    select * from stg_revision_versions
)

select
    feed, stream, period, entity_key, indicator, version, versions, batch_id, published_at,
    value, previous_value, change, change_pct, first_published_value, latest_value,
    revision_value, revision_pct, is_latest
from versions
