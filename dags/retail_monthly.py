"""
### 消费品市场月度监测 · retail_monthly

Pulls the district's retail monthly monitoring feed (社会消费品零售总额 and above-quota
units by enterprise and category, 万元), validates it with the suites in `expectations/`,
loads it into the warehouse and snapshots the retail KPIs (measure 19).

**Period.** Each run loads the calendar month in which its data interval starts. The
interval runs from the 15th to the 15th, so the run for March fires on 15 April, after the
release lag. January is published with February (1-2月): January runs end skipped.

**Backfill** a range (runs show in the UI; reruns are idempotent):

    airflow backfill create --dag-id retail_monthly \
        --from-date 2024-02-15 --to-date 2024-12-15 --reprocess-behavior completed

or, without Airflow: `cm run --feed retail_monthly --from 2024-02 --to 2024-12`.
"""

from consumption_monitor.orchestration.feed_dag import build_feed_dag

# The feed's Airflow DAG; its schedule (06:00 on the spec's release_day), start date and
# tags come from the feed spec and the measure catalog (see orchestration/feed_dag.py).
dag = build_feed_dag("retail_monthly", doc_md=__doc__)
