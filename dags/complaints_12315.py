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

import pendulum
from airflow.sdk import CronDataIntervalTimetable

from consumption_monitor.orchestration.dags import TIMEZONE, build_feed_dag

dag = build_feed_dag(
    "complaints_12315",
    schedule=CronDataIntervalTimetable("0 6 10 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2024, 1, 10, tz=TIMEZONE),
    tags=["complaints", "12315", "measure-19"],
    doc_md=__doc__,
)
