"""Bad-input gallery, limits: a source that sends too much or takes too long is refused
with a clear reason recorded in ``audit_load_run``, and nothing of the period loads.

Cases run against the real sample feed server: through ``cm run`` with the specs' limits,
and through the pipeline with a spec whose limits are tightened (a test cannot wait two
hours for the default deadline).
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from sqlalchemy import select, text

from consumption_monitor.cli import main
from consumption_monitor.feeds.errors import LimitExceeded
from consumption_monitor.feeds.spec import ExtractLimits, load_feed
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for


def _failure(url: str, feed: str, period: str) -> str:
    runs = schema.audit_load_run
    with engine_for(url).connect() as conn:
        row = conn.execute(
            select(runs.c.outcome, runs.c.message).where(
                runs.c.feed == feed, runs.c.period == period, runs.c.step == "extract"
            )
        ).one()
    assert row.outcome == "failed"
    return row.message


def _rows(url: str, table: str, period: str) -> int:
    with engine_for(url).connect() as conn:
        return conn.execute(
            text(f"select count(*) from {table} where period = :p"), {"p": period}
        ).scalar()


def test_a_cursor_that_loops_back_ends_the_extract_at_once(
    feed_server, warehouse_url: str, capsys
) -> None:
    feed_server.faults.add("cursor_loop", period="2025-03")
    started = time.monotonic()
    argv = ["run", "--feed", "tradein_transactions", "--period", "2025-03", "--url", warehouse_url]
    assert main(argv) == 1
    assert time.monotonic() - started < 60  # not 10,000 pages later
    out = capsys.readouterr().out
    assert "分页循环" in out
    assert "分页循环" in _failure(warehouse_url, "tradein_transactions", "2025-03")
    assert _rows(warehouse_url, "core_tradein_transactions", "2025-03") == 0
    requests = [e for e in feed_server.request_log if "cursor_loop" in e["faults"]]
    assert len(requests) == 2  # the first page and the one that pointed back


def test_a_page_over_the_page_limit_is_refused_without_being_kept(
    feed_server, warehouse_url: str, tmp_path, capsys
) -> None:
    feed_server.faults.add("huge_page", mb=70, period="2025-03", path="district-totals")
    argv = ["run", "--feed", "retail_monthly", "--period", "2025-03", "--url", warehouse_url]
    assert main(argv) == 1
    assert "max_page_bytes" in capsys.readouterr().out
    assert "超过上限" in _failure(warehouse_url, "retail_monthly", "2025-03")
    assert _rows(warehouse_url, "core_retail_district_totals", "2025-03") == 0
    kept = sum(p.stat().st_size for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert kept < 10 * 1024 * 1024  # the 70 MB page was never written


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (ExtractLimits(max_batch_pages=1), "max_batch_pages"),
        (ExtractLimits(max_batch_bytes=50_000), "max_batch_bytes"),
    ],
    ids=["pages", "bytes"],
)
def test_a_batch_over_its_limits_is_refused(
    feed_server, sqlite_url: str, limits: ExtractLimits, expected: str
) -> None:
    feed = dataclasses.replace(load_feed("tradein_transactions"), limits=limits)
    with pytest.raises(LimitExceeded, match=expected):
        run_period(feed, "2025-03", url=sqlite_url)
    assert expected in _failure(sqlite_url, "tradein_transactions", "2025-03")
    assert _rows(sqlite_url, "core_tradein_transactions", "2025-03") == 0


def test_a_server_that_trickles_meets_the_deadline(feed_server, sqlite_url: str) -> None:
    feed_server.faults.add("trickle", bytes_per_second=100, times=-1)
    feed = dataclasses.replace(load_feed("retail_monthly"), limits=ExtractLimits(deadline_s=3))
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="deadline"):
        run_period(feed, "2025-03", url=sqlite_url)
    assert time.monotonic() - started < 15  # each read is short, the whole is bounded
    assert "时限" in _failure(sqlite_url, "retail_monthly", "2025-03")


def test_limits_in_a_spec_are_checked() -> None:
    from consumption_monitor.feeds.spec import SpecError, parse_feed

    raw = {
        "name": "x",
        "title": "x",
        "grain": "month",
        "period_field": "period",
        "unit": None,
        "source": {"kind": "http"},
        "streams": [],
    }
    assert parse_feed({**raw, "limits": {"deadline_s": 60}}).limits.deadline_s == 60
    with pytest.raises(SpecError, match="unknown limits"):
        parse_feed({**raw, "limits": {"max_rows": 1}})
    with pytest.raises(SpecError, match="positive"):
        parse_feed({**raw, "limits": {"max_page_bytes": 0}})
