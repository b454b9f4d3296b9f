"""
### 历史补数 · feed_catchup

Loads a range of periods of one or more feeds in one go: the first load of a new
installation, or a mass reload after a fix. One mapped task per feed runs, in order, the
same extract → validate → load → snapshot steps as the monthly DAGs, each period in its own
atomic, idempotent load; periods already loaded come back `unchanged`. A period that fails
does not stop the others; the task fails at the end and names them (an outage is retried,
a rejected batch is not). Each loaded period is announced on its feed's Asset.

**Trigger** with the parameters `feeds` (empty = all), `from` and `to` (`YYYY-MM`; empty
`to` = the last full month), e.g.
`airflow dags trigger feed_catchup --conf '{"feeds": ["retail_monthly"], "from": "2024-01"}'`.
Without Airflow: `cm run --feed F --from YYYY-MM --to YYYY-MM`.
"""

import pendulum

from consumption_monitor.common.periods import BUREAU_TIMEZONE
from consumption_monitor.orchestration.catchup_dag import build_catchup_dag

dag = build_catchup_dag(
    start_date=pendulum.datetime(2024, 1, 1, tz=BUREAU_TIMEZONE), doc_md=__doc__
)
