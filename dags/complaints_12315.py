"""
### 12315投诉举报办理监测 · complaints_12315

Pulls the district's 12315 cases (measure 19), one row per complaint (投诉) or report
(举报) received in the month, with the dates of acceptance, closure or check and the
outcome. Validated with `expectations/complaints_12315_cases.json`, loaded into
`core_complaints_12315_cases`. `mart_complaints_12315_cases` derives the statutory
deadlines in working days on the holiday calendar (`ref_workday_calendar`: accept within 7,
mediate within 45 of acceptance, check a report within 15) and the on-time flags;
`mart_complaints_12315_monthly` gives 投诉按时办结率 and 举报按时核查率 (target ≥ 99 %).

**Period.** The month of receipt; the run for March fires on 10 April. January is
published. Cases still being handled at the pull come as 办理中: rerun a period later
(`cm run --feed complaints_12315 --period YYYY-MM`) to load their outcome as a revision.
"""

from consumption_monitor.orchestration.feed_dag import build_feed_dag

# The feed's Airflow DAG; its schedule (06:00 on the spec's release_day), start date and
# tags come from the feed spec and the measure catalog (see orchestration/feed_dag.py).
dag = build_feed_dag("complaints_12315", doc_md=__doc__)
