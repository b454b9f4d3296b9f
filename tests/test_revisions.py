"""Revision analysis (mart_revisions, mart_revision_summary, ``cm revisions``): a period
published again with other figures keeps its first value, the later one and the revision,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import text

from consumption_monitor.cli import main
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.warehouse.db import engine_for

PERIOD = "2024-05"


def test_a_revised_period_shows_first_latest_and_revision(
    feed_server, warehouse_url: str, capsys
) -> None:
    run_period("retail_monthly", "2024-04", url=warehouse_url)
    run_period("retail_monthly", PERIOD, url=warehouse_url)
    engine = engine_for(warehouse_url)
    with engine.connect() as conn:
        unrevised = conn.execute(
            text("select count(*) from mart_revisions where versions > 1")
        ).scalar()
        before = {
            r.entity_key: float(r.value_ytd)
            for r in conn.execute(
                text(
                    "select uscc || '|' || category_code as entity_key, value_ytd "
                    "from core_retail_above_quota where period = :p"
                ),
                {"p": PERIOD},
            )
        }
    assert unrevised == 0
    feed_server.faults.add("revision", period=PERIOD, revision=1)
    run_period("retail_monthly", PERIOD, url=warehouse_url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "select * from mart_revisions where period = :p and stream = 'above_quota' "
                    "and indicator = 'value_ytd' order by entity_key, version"
                ),
                {"p": PERIOD},
            )
            .mappings()
            .all()
        )
        summary = {
            r["indicator"]: r
            for r in conn.execute(
                text("select * from mart_revision_summary where stream = 'above_quota'")
            ).mappings()
        }
        april = conn.execute(
            text("select max(versions) from mart_revisions where period = '2024-04'")
        ).scalar()
    assert april == 1
    by_key: dict[str, list] = {}
    for r in rows:
        by_key.setdefault(r["entity_key"], []).append(r)
    assert all(len(v) == 2 for v in by_key.values())
    revised = [k for k, v in by_key.items() if v[1]["value"] != v[0]["value"]]
    assert revised
    key = revised[0]
    first, latest = by_key[key]
    assert float(first["value"]) == before[key]
    assert (
        float(first["first_published_value"])
        == before[key]
        == float(latest["first_published_value"])
    )
    assert latest["is_latest"] == 1 and first["is_latest"] == 0
    assert abs(float(latest["revision_value"]) - (float(latest["value"]) - before[key])) < 1e-6
    assert (
        abs(float(latest["revision_pct"]) - 100 * float(latest["revision_value"]) / before[key])
        < 1e-6
    )
    assert abs(float(latest["change"]) - float(latest["revision_value"])) < 1e-6
    ytd = summary["value_ytd"]
    assert ytd["periods"] == 2 and ytd["periods_revised"] == 1
    assert float(ytd["share_periods_revised"]) == 0.5
    assert ytd["figures_revised"] == len(revised) and float(ytd["mean_abs_revision"]) > 0

    assert (
        main(
            [
                "revisions",
                "--feed",
                "retail_monthly",
                "--period",
                PERIOD,
                "--url",
                warehouse_url,
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    keys = {r["entity_key"] for r in data["revisions"] if r["indicator"] == "value_ytd"}
    assert keys == set(revised)
    assert main(["revisions", "--url", warehouse_url]) == 0
    out = capsys.readouterr().out
    assert "首次公布" in out and "修订汇总" in out
