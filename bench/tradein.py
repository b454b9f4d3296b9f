"""Trade-in at transaction scale on PostgreSQL (issue 4 §5): fetch → validate → load of
``CM_BENCH_TRADEIN_ROWS`` (default 1,000,000) transactions of one period from the local
feed server, with two baselines measured in the same run on the same rows: raw ``COPY``
of a CSV file into a table of the same shape, keys and indexes (the bound), and
``pandas.DataFrame.to_sql`` (what people usually write).

Goals: load stage ≥ 50 % of raw COPY, end to end ≥ 20 %, load ≥ 10× to_sql, peak memory
< 1 GiB at 1M and 10M rows (10M runs only with ``CM_BENCH_TRADEIN_10M=1``: it takes a
long time). Uses its own database, dropped afterwards, and a feed server on port 8101.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from bench.pgdb import db_url as _db_url
from bench.pgdb import scratch_database

PORT = int(os.environ.get("CM_BENCH_FEED_PORT", "8101"))
ROWS = int(os.environ.get("CM_BENCH_TRADEIN_ROWS", "1000000"))
TO_SQL_ROWS = int(os.environ.get("CM_BENCH_TO_SQL_ROWS", "100000"))
CORE = "core_tradein_transactions"


def _wait(url: str, seconds: float = 30) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"feed server at {url} did not start")


def _stages(rows: int, db: str, work: Path) -> dict:
    """Run the pipeline in a child process against a feed server serving ``rows``."""
    env = {
        **os.environ,
        "CM_DATA_DIR": str(work / f"data-{rows}"),
        "CM_PII_KEY": os.environ.get("CM_PII_KEY") or uuid.uuid4().hex * 2,
        "CM_FEED_BASE_URL": f"http://127.0.0.1:{PORT}",
        "CM_TRADEIN_ROWS_PER_MONTH": str(rows),
        "GX_ANALYTICS_ENABLED": "false",
    }
    env.pop("CM_FEED_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "cm_devtools", "feed-server", "--port", str(PORT),
         "--as-of", "2025-12-20", "--tradein-rows", str(rows)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{PORT}")
        out = subprocess.run(
            [sys.executable, "-m", "bench.tradein_stages", "--url", _db_url(db)],
            env=env, capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _copy_bound(db: str, work: Path) -> tuple[int, float]:
    """Raw COPY (psql \\copy of a CSV file) of the loaded rows into a table of the same
    shape, keys and indexes: the bound the load stage is compared with."""
    csv = work / "rows.csv"
    dsn = _db_url(db, "postgresql")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"create table bound (like {CORE} including all)")
        with open(csv, "wb") as f, conn.cursor().copy(f"copy {CORE} to stdout csv") as copy:
            for data in copy:
                f.write(data)
        rows = conn.execute(f"select count(*) from {CORE}").fetchone()[0]
    start = time.perf_counter()
    subprocess.run(["psql", dsn, "-q", "-c", f"\\copy bound from '{csv}' csv"], check=True)
    return rows, time.perf_counter() - start


def _to_sql(db: str) -> tuple[int, float]:
    """pandas ``to_sql`` (default method) of a sample of the same rows into a table of the
    same shape, keys and indexes."""
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(_db_url(db))
    frame = pd.read_sql(f"select * from {CORE} limit {TO_SQL_ROWS}", engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table to_sql_target (like {CORE} including all)")
    start = time.perf_counter()
    frame.to_sql("to_sql_target", engine, if_exists="append", index=False)
    seconds = time.perf_counter() - start
    engine.dispose()
    return len(frame), seconds


def _measure(rows: int, work: Path, baselines: bool) -> dict:
    try:
        with scratch_database("cm_bench_tradein") as db:
            result = _stages(rows, db, work)
            if baselines:
                result["copy"] = _copy_bound(db, work)
                result["to_sql"] = _to_sql(db)
            return result
    finally:
        shutil.rmtree(work / f"data-{rows}", ignore_errors=True)


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="cm-bench-tradein-") as tmp:
        work = Path(tmp)
        main = _measure(ROWS, work, baselines=True)
        big = (
            _measure(10_000_000, work, baselines=False)
            if os.environ.get("CM_BENCH_TRADEIN_10M")
            else None
        )
    n, s = main["rows"], main["seconds"]
    copy_rows, copy_s = main["copy"]
    sql_rows, sql_s = main["to_sql"]
    rate = {k: n / v for k, v in s.items()}
    copy_rate, sql_rate = copy_rows / copy_s, sql_rows / sql_s
    load_rate = main["loaded"] / s["load"]
    records = [
        {"name": "tradein.rows", "value": n, "unit": "rows"},
        {"name": "tradein.extract_rows_s", "value": round(rate["extract"]), "unit": "rows/s"},
        {"name": "tradein.validate_rows_s", "value": round(rate["validate"]), "unit": "rows/s"},
        {"name": "tradein.load_rows_s", "value": round(load_rate), "unit": "rows/s"},
        {"name": "tradein.e2e_rows_s", "value": round(rate["e2e"]), "unit": "rows/s"},
        {"name": "tradein.copy_rows_s", "value": round(copy_rate), "unit": "rows/s"},
        {"name": "tradein.to_sql_rows_s", "value": round(sql_rate), "unit": "rows/s"},
        {"name": "tradein.load_vs_copy", "value": round(load_rate / copy_rate, 3),
         "unit": "ratio", "goal": ">= 0.5"},
        {"name": "tradein.e2e_vs_copy", "value": round(rate["e2e"] / copy_rate, 3),
         "unit": "ratio", "goal": ">= 0.2"},
        {"name": "tradein.vs_to_sql", "value": round(load_rate / sql_rate, 1),
         "unit": "ratio", "goal": ">= 10"},
        {"name": "tradein.peak_rss_mb_1m", "value": main["peak_rss_mb"], "unit": "MB",
         "goal": "< 1024"},
        {"name": "tradein.peak_rss_mb_10m", "value": big["peak_rss_mb"] if big else None,
         "unit": "MB", "goal": "< 1024" if big else "not measured (CM_BENCH_TRADEIN_10M=1)"},
    ]  # fmt: skip
    return records


if __name__ == "__main__":
    for record in run():
        print(record)
