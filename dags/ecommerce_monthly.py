"""
### 网络零售月度监测 · ecommerce_monthly

Pulls the district's online retail feed (measures 15 and 19): 网上零售额 and
实物商品网上零售额, year-to-date only as NBS publishes them, and the monitored enterprises'
monthly sales per platform (抖音、快手、美团、焕新生活APP、京东、淘宝) with live-streaming
sessions and sales and orders, in 万元. Validated with `expectations/ecommerce_*.json`,
loaded into `core_ecommerce_*`; analysts read `mart_ecommerce_monthly` and
`mart_ecommerce_by_platform`.

**Period.** Each run loads the calendar month its data interval starts in; the interval runs
from the 20th (after the NBS release), so the run for March fires on 20 April. January is
published with February (1-2月): January runs end skipped.

**Backfill:** `cm run --feed ecommerce_monthly --from 2024-02 --to 2024-12`, or
`airflow backfill create --dag-id ecommerce_monthly --from-date 2024-02-20 --to-date
2024-12-20 --reprocess-behavior completed`.
"""

from consumption_monitor.orchestration.feed_dag import build_feed_dag

# The feed's Airflow DAG; its schedule (06:00 on the spec's release_day), start date and
# tags come from the feed spec and the measure catalog (see orchestration/feed_dag.py).
dag = build_feed_dag("ecommerce_monthly", doc_md=__doc__)
