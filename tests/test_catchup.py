"""Catching up a range of periods in one process: same warehouse as period by period,
every period gets an outcome, failures are named and do not stop the others."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from consumption_monitor.pipeline.catchup import catchup_jobs, failure_message, run_periods
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.digest import warehouse_digest


def test_jobs_cover_every_feed_by_default_and_reject_unknown_ones() -> None:
    from consumption_monitor.feeds.spec import list_feeds

    jobs = catchup_jobs([], "2025-11", "2026-02")
    assert [j["feed"] for j in jobs] == list_feeds()
    assert jobs[0]["periods"] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    with pytest.raises(ValueError, match="未知的数据源 nope"):
        catchup_jobs(["retail_monthly", "nope"], "2025-01", "2025-02")
    with pytest.raises(ValueError, match="期别范围为空"):
        catchup_jobs(["retail_monthly"], "2025-03", "2025-02")


def test_a_failed_period_is_named_and_the_others_still_load(
    feed_server, warehouse_url: str
) -> None:
    feed_server.faults.add("drop_column", period="2025-03", column="value_ytd")
    periods = ["2025-01", "2025-02", "2025-03", "2025-04"]
    outcomes = run_periods("retail_monthly", periods, url=warehouse_url)
    by_period = {o.period: o for o in outcomes}
    assert by_period["2025-01"].outcome == "not_published"
    assert by_period["2025-02"].outcome == "loaded"
    assert by_period["2025-03"].outcome == "failed" and not by_period["2025-03"].retryable
    assert by_period["2025-04"].outcome == "loaded"
    message = failure_message("retail_monthly", outcomes)
    assert message is not None and message.startswith("retail_monthly: 1 期失败 (2025-03)")
    with engine_for(warehouse_url).connect() as conn:
        periods = (
            conn.execute(
                text("select distinct period from core_retail_above_quota order by period")
            )
            .scalars()
            .all()
        )
    assert periods == ["2025-02", "2025-04"]
    # a second pass loads the repaired period and leaves the others unchanged
    feed_server.faults.clear()
    again = run_periods("retail_monthly", ["2025-02", "2025-03", "2025-04"], url=warehouse_url)
    assert [o.outcome for o in again] == ["unchanged", "loaded", "unchanged"]
    assert failure_message("retail_monthly", again) is None


def test_an_outage_is_retryable(feed_server, sqlite_url: str) -> None:
    feed_server.faults.add("http_500", times=-1)
    (outcome,) = run_periods("employment_monthly", ["2025-05"], url=sqlite_url)
    assert outcome.outcome == "failed" and outcome.retryable


def test_catch_up_equals_period_by_period_in_any_order(feed_server, new_warehouse_url) -> None:
    from consumption_monitor.pipeline.steps import run_period

    periods = ["2025-02", "2025-03", "2025-04", "2025-05"]
    one_by_one, caught_up = new_warehouse_url(), new_warehouse_url()
    for period in reversed(periods):
        run_period("ecommerce_monthly", period, url=one_by_one)
    outcomes = run_periods("ecommerce_monthly", periods, url=caught_up)
    assert {o.outcome for o in outcomes} == {"loaded"}
    a = warehouse_digest(engine_for(one_by_one), exclude_volatile=True)
    b = warehouse_digest(engine_for(caught_up), exclude_volatile=True)
    assert a == b


def test_cm_run_json_and_the_log_report_rows_and_seconds_per_stage(
    feed_server, sqlite_url: str, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from consumption_monitor.cli import main

    caplog.set_level(logging.INFO, logger="consumption_monitor.pipeline.stages")
    argv = ["run", "--feed", "employment_monthly", "--period", "2025-05", "--url", sqlite_url]
    assert main([*argv, "--json"]) == 0
    (period,) = json.loads(capsys.readouterr().out)
    stages = period["stages"]
    assert list(stages) == ["extract", "validate", "load", "snapshot", "e2e"]
    rows = sum(period["rows"].values())
    assert stages["load"]["rows"] == rows and stages["validate"]["rows"] == rows
    assert stages["extract"]["rows"] == stages["e2e"]["rows"] >= rows > 0
    assert all(s["seconds"] > 0 for s in stages.values())
    # seconds are rounded to the millisecond
    parts = sum(s["seconds"] for n, s in stages.items() if n != "e2e")
    assert stages["e2e"]["seconds"] >= parts - 0.002
    load = stages["load"]
    assert rows / (load["seconds"] + 0.0006) <= load["rows_per_s"] + 1
    assert load["rows_per_s"] - 1 <= rows / max(load["seconds"] - 0.0006, 1e-6)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage ")]
    assert [m.split()[1] for m in logged] == ["extract", "validate", "load", "snapshot"]
    assert logged[2].startswith(f"stage load employment_monthly 2025-05: {rows} rows in ")
