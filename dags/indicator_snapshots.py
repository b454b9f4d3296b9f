"""
### 指标快照 · indicator_snapshots

Recomputes the indicator snapshots of the measure catalog (all 19 measures) whenever a
feed loads a period: the DAG is scheduled on every feed's Asset (any of them), reads the
loaded periods from the events and recomputes those periods and every later one they
affect (year-to-date sums up to the end of the year, computed YoY a year later). Each
recomputation adds a snapshot only where a value changed; `mart_indicator_snapshot_latest`
shows the newest per KPI and period.

The last task writes the monthly report (HTML + XLSX, `CM_REPORTS_DIR`) of the latest
recomputed period; the Airflow UI shows it under Browse → 监测月报 (plugin `cm_reports`).

**Manual run** with params `{"periods": ["2025-03"]}`, or without Airflow:
`cm snapshot --period 2025-03`.
"""

from consumption_monitor.feeds.spec import list_feeds
from consumption_monitor.orchestration.snapshot_dag import build_snapshot_dag

dag = build_snapshot_dag(feeds=list_feeds(), doc_md=__doc__)  # every feed with a spec
