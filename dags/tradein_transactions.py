"""
### 以旧换新补贴交易监测 · tradein_transactions

Pulls the consumer trade-in (以旧换新) subsidy transactions of 西区 (measure 12), one row
per subsidised item, from the subsidy platform's cursor-paginated export. Transaction
scale: validated and loaded in bounded chunks (memory does not grow with the month's
volume); PostgreSQL loads stream through `COPY` in one transaction per period.

**Personal data.** The consumer's ID number and phone are validated (GB 11643 check digit,
11-digit mobile) and replaced by keyed hashes (HMAC-SHA256, key from the environment
`CM_PII_KEY` or the Airflow connection `cm_pii`) in the extract task, before anything is
written; the raw archive keeps the pseudonymised pages and the sha256 of the bytes
received. Without a key the extract task fails.

**Rules.** `expectations/tradein_transactions.json` with the policy year's parameters from
`reference/tradein_rules_<year>.yaml` (subsidy ≤ min(price × rate, cap), or the fixed amount
of scrappage renewals, digital ≤ 6,000 元, dates in the period, the policy year and the
category's effective dates, USCC check), plus history checks in the warehouse
(order ids unique across batches, per consumer/category/year item limits). Breaches are
quarantined: `cm tradein-audit` lists them by enterprise.

**Period.** The month of sale; the run for March fires on 5 April. Marts:
`mart_tradein_by_category_month`, `mart_tradein_by_enterprise_month`,
`mart_tradein_enterprise_year`, `mart_tradein_quarantine_by_enterprise`.
"""

from consumption_monitor.orchestration.feed_dag import build_feed_dag

# The feed's Airflow DAG; its schedule (06:00 on the spec's release_day), start date and
# tags come from the feed spec and the measure catalog (see orchestration/feed_dag.py).
dag = build_feed_dag("tradein_transactions", doc_md=__doc__)
