"""
### 责任单位工作台账 · work_ledgers

Loads the work ledgers the plan's responsible units hand in as filled Excel templates
(`cm ledger-templates`): promotion events (measures 1, 11–14), new shops and consumption
scenes (8, 9, 14, 16), 文创 product sales (10) and the progress of qualitative tasks such as
火红年华 4A and 苏铁山药 (2, 9). Files are dropped in `<CM_INCOMING_DIR>/work_ledgers/`;
a file's period and unit come from its header block (统计期, 填报单位).

**Batch.** The latest accepted file of each unit and ledger for the period; a corrected
file supersedes the unit's earlier one, a file sent twice is recognised by its sha256.
A file that does not match its template (version, columns, merged header) is moved to
`_rejected/` with the reason and the other units' files still load; bad rows are
quarantined by `expectations/ledger_*.json`. Analysts read `mart_ledger_*`.

**Period.** Each run loads the calendar month its data interval starts in; units hand in
by the 5th, so the run for March fires on 5 April. A month without any file is skipped.

**Backfill:** `cm run --feed work_ledgers --from 2024-01 --to 2024-12`.
"""

from consumption_monitor.orchestration.feed_dag import build_feed_dag

# The feed's Airflow DAG; its schedule (06:00 on the spec's release_day), start date and
# tags come from the feed spec and the measure catalog (see orchestration/feed_dag.py).
dag = build_feed_dag("work_ledgers", doc_md=__doc__)
