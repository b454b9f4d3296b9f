"""``cm partitions`` (issue 17's month partitions, operated): what each partitioned core
table holds, and the build tables attached to nothing that a killed load leaves and no later
load of its month drops. ``--drop`` drops those, but never a month being loaded now (its
period's lock is held), never an attached month, never a table whose name the loader does not
make; ``cm status`` warns of them."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import text

from cm_devtools.sample_server import tradein_data
from consumption_monitor.cli.parser import main
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.status import status_warnings
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.warehouse import partitions, schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.digest import table_digest
from consumption_monitor.warehouse.loader import lock_period

FEED = "tradein_transactions"
CORE = "core_tradein_transactions"


@pytest.fixture(autouse=True)
def _volume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tradein_data.ROWS_ENV, "1500")


def _cm(capsys, *argv: str) -> tuple[int, str]:
    code = main(["partitions", *argv])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def _tables(url: str) -> set[str]:
    with engine_for(url).connect() as conn:
        return set(
            conn.execute(
                text(
                    "select c.relname from pg_class as c join pg_namespace as n "
                    "on n.oid = c.relnamespace where n.nspname = :s and c.relkind = 'r'"
                ),
                {"s": partitions.SCHEMA},
            ).scalars()
        )


@pytest.mark.postgres
def test_left_behind_build_tables_are_listed_and_dropped_but_not_a_running_loads(
    feed_server, pg_database, capsys
) -> None:
    url = pg_database
    loads = {period: run_period(FEED, period, url=url) for period in ("2025-03", "2025-04")}
    core = schema.core(load_feed(FEED).stream("transactions"))
    engine = engine_for(url)
    with engine.begin() as conn:  # what killed loads leave: committed, attached to nothing
        dead = partitions.create_build_table(conn, core, "period", "2025-03")
        running = partitions.create_build_table(conn, core, "period", "2025-04")
        conn.execute(  # a dead load's rows, partly copied
            text(
                f"insert into {partitions.qualified(dead)} select * from {CORE} "
                "where period = '2025-03' limit 100"
            )
        )
        conn.execute(text(f"create table {partitions.qualified(CORE + '_notes')} (x int)"))
    months = {name for name in _tables(url) if name not in (dead, running, CORE + "_notes")}
    digest = table_digest(engine, CORE)

    code, out = _cm(capsys, "--url", url)
    assert code == 0
    assert f"{CORE}（{FEED}）：2 个月分区" in out
    assert "未挂接的建表 2 个" in out and dead in out and running in out
    assert "cm partitions --drop" in out
    assert CORE + "_notes" not in out  # not a name the loader makes
    listed = json.loads(_cm(capsys, "--url", url, "--json")[1])["tables"][0]
    assert [p["period"] for p in listed["partitions"]] == ["2025-03", "2025-04"]
    assert {p["name"] for p in listed["partitions"]} == months
    assert [(t["name"], t["period"]) for t in listed["unattached"]] == sorted(
        [(dead, "2025-03"), (running, "2025-04")]
    )
    assert listed["unattached"][0]["bytes"] > 0

    with engine.connect() as holder:  # a load of 2025-04 is running: it holds the lock
        holder.begin()
        lock_period(holder, FEED, "2025-04")
        left = [w for w in status_warnings(engine, date(2025, 6, 1)) if "遗留的建表" in w]
        assert len(left) == 1 and left[0].startswith(f"{FEED} 有 1 个") and "（2025-03，" in left[0]
        assert "cm partitions --drop" in left[0]  # the running load's table is not one
        code, out = _cm(capsys, "--url", url, "--drop", "--json")
        holder.rollback()
    result = json.loads(out)
    assert code == 0
    assert [d["table"] for d in result["dropped"]] == [dead]
    assert [(d["table"], d["period"]) for d in result["skipped"]] == [(running, "2025-04")]
    assert _tables(url) == months | {running, CORE + "_notes"}

    code, out = _cm(capsys, "--url", url, "--drop")  # the load has ended: dropped now
    assert f"已删除 {running}（{FEED} 2025-04）" in out
    assert "未挂接的建表" not in out
    assert _tables(url) == months | {CORE + "_notes"}
    assert table_digest(engine, CORE) == digest
    with engine.connect() as conn:
        count = conn.execute(text(f"select count(*) from {CORE}")).scalar()
    assert count == sum(load["load"]["rows"]["transactions"] for load in loads.values())

    code, out = _cm(capsys, "--url", url, "--drop")
    assert code == 0 and "没有需要删除的建表" in out
    assert not [w for w in status_warnings(engine, date(2025, 6, 1)) if "遗留的建表" in w]


def test_a_sqlite_warehouse_says_it_has_no_partitions(sqlite_url, capsys) -> None:
    code, out = _cm(capsys, "--url", sqlite_url, "--drop")
    assert code == 0
    assert out.splitlines() == [
        "没有需要删除的建表 (nothing to drop)",
        "此仓库不分区：月分区仅用于 PostgreSQL (no month partitions on this warehouse)",
    ]
    assert json.loads(_cm(capsys, "--url", sqlite_url, "--json")[1]) == {
        "partitioned": False,
        "tables": [],
    }
