"""The peers the trade-in run is measured against (issue 17), each run as its own process on
the same feed server and rows, printing one JSON line (rows, seconds, peak memory):

- ``fetch``: the pages alone (requests, JSON parse, discard): the bound of any pipeline;
- ``to_sql``: what a statistician writes: requests → one DataFrame → ``DataFrame.to_sql``;
- ``dlt``: dlt's fastest documented configuration for PostgreSQL: a resource yielding Arrow
  tables, the ``parquet`` loader file format (loaded through ADBC). It runs in the
  bench-only venv ``.venv-peers`` (``bench/requirements-peers.txt``), never in the
  product's; ``--disposition merge`` reloads the period (delete-insert on ``period``).

Neither validates nor protects personal data. Nothing here imports the platform, so the
peers' venv needs only what they use.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

PATH = "/api/v1/tradein/transactions"
PAGE = 1000  # the platform's page size for this stream (its spec)


def pages(base: str, period: str) -> Iterator[list[dict[str, Any]]]:
    """The period's records, a page at a time, following the cursor."""
    import requests

    session = requests.Session()
    cursor = None
    while True:
        params = {"period": period, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
        response = session.get(base + PATH, params=params, timeout=60)
        response.raise_for_status()
        doc = response.json()
        yield doc["data"]
        cursor = doc.get("next_cursor")
        if not cursor:
            return


def fetch(args: argparse.Namespace) -> int:
    rows = 0
    for records in pages(args.base, args.period):
        rows += len(records)
    return rows


def to_sql(args: argparse.Namespace) -> int:
    import pandas as pd
    from sqlalchemy import create_engine

    records = [r for page in pages(args.base, args.period) for r in page]
    frame = pd.DataFrame(records)
    engine = create_engine(args.url)
    frame.to_sql("peer_to_sql", engine, if_exists="append", index=False)
    engine.dispose()
    return len(frame)


def dlt_run(args: argparse.Namespace) -> int:
    import dlt
    import pyarrow as pa

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ["DESTINATION__POSTGRES__CREDENTIALS"] = args.url

    @dlt.resource(name="transactions", write_disposition=args.disposition, merge_key="period")
    def transactions() -> Iterator[pa.Table]:
        batch: list[dict[str, Any]] = []
        for records in pages(args.base, args.period):
            batch.extend(records)
            if len(batch) >= 10 * PAGE:
                yield pa.Table.from_pylist(batch)
                batch = []
        if batch:
            yield pa.Table.from_pylist(batch)

    pipeline = dlt.pipeline(
        pipeline_name="peer_tradein",
        destination="postgres",
        dataset_name="peer_dlt",
        pipelines_dir=args.work,
    )
    info = pipeline.run(transactions(), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name("transactions")
        rows = client.execute_sql(f"select count(*) from {table} where period = %s", args.period)
    return int(rows[0][0])


RUNS = {"fetch": fetch, "to_sql": to_sql, "dlt": dlt_run}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=sorted(RUNS))
    parser.add_argument("--base", required=True, help="feed server base URL")
    parser.add_argument("--period", default="2025-03")
    parser.add_argument("--url", help="database URL (SQLAlchemy for to_sql, libpq for dlt)")
    parser.add_argument("--work", default=".", help="dlt's pipelines directory")
    parser.add_argument("--disposition", default="append", choices=["append", "merge"])
    args = parser.parse_args()
    start = time.perf_counter()
    rows = RUNS[args.peer](args)
    seconds = time.perf_counter() - start
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps({"peer": args.peer, "rows": rows, "seconds": seconds, "peak_rss_mb": peak}))


if __name__ == "__main__":
    sys.exit(main())
