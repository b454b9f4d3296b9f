"""
### 数据逾期检查 · feed_lateness

Every morning, checks each feed's recent periods against the due date its spec declares
(`due:` in `feeds/specs/<feed>.yaml`: a day of the following month, moved to the next
working day by the PRC holiday calendar). A period past due and not loaded alerts once on
the configured channels (connections `cm_alert_webhook`, `cm_alert_smtp`); when the feed
later loads the period, its load task sends the recovery message.

A checking DAG rather than Airflow deadline alerts: a deadline belongs to a DAG run, and a
late feed is one whose run did not load anything (skipped, never triggered, or failed).
"""

import pendulum
from airflow.sdk import CronDataIntervalTimetable

from consumption_monitor.common.periods import BUREAU_TIMEZONE
from consumption_monitor.orchestration.lateness_dag import build_lateness_dag

dag = build_lateness_dag(
    schedule=CronDataIntervalTimetable("30 9 * * *", timezone=BUREAU_TIMEZONE),
    start_date=pendulum.datetime(2024, 1, 1, tz=BUREAU_TIMEZONE),
    doc_md=__doc__,
)
