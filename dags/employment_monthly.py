"""
### 就业与失业保险月度监测 · employment_monthly

Pulls the district's employment feed (measures 1 and 6): public job fairs held in the month
(date, mode, jobs offered, attendees, hires) and the month's figures — 城镇新增就业,
公益性岗位安置, 以工代赈 jobs, unemployment-insurance recipients and benefits paid (万元).
Validated with `expectations/employment_*.json`, loaded into `core_employment_*`; analysts
read `mart_employment_monthly` (job fairs and jobs offered to date against the plan's
3 fairs / 800 jobs a year).

**Period.** Each run loads the calendar month its data interval starts in; the interval runs
from the 10th, so the run for March fires on 10 April. Every month is published, January
included; most months have no job fair.

**Backfill:** `cm run --feed employment_monthly --from 2024-01 --to 2024-12`.
"""

from consumption_monitor.orchestration.feed_dag import build_feed_dag

# The feed's Airflow DAG; its schedule (06:00 on the spec's release_day), start date and
# tags come from the feed spec and the measure catalog (see orchestration/feed_dag.py).
dag = build_feed_dag("employment_monthly", doc_md=__doc__)
