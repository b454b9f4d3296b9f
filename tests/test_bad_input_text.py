"""Bad-input gallery, text longer than its column: the same outcome on SQLite and PostgreSQL.

Every string column has a length in its spec; the warehouse column is ``String(length)``
and the suite checks it (characters, not bytes), so an over-long value quarantines its
row with a reason naming the column, the limit and the length, and the other rows load.
A load that fails anyway is rolled back, recorded in ``audit_load_run`` in one clean line
and alerted, and ``cm run`` goes on with the next period.

The cases run end to end through ``cm run`` against the real sample feed server (fault
``long_text``) on both backends; the forced load failure is a real unique index on a
staging table that a revised batch breaks.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from consumption_monitor.alerts.channels import configured_channels
from consumption_monitor.cli import main
from consumption_monitor.feeds.frames import to_frame
from consumption_monitor.feeds.spec import DEFAULT_TEXT_LENGTH, list_feeds, load_feed
from consumption_monitor.feeds.text_limits import TextTooLong, check_lengths
from consumption_monitor.pipeline.steps import extract_step, load_step, validate_step
from consumption_monitor.validation.suites import LENGTH_CHECK, stream_suite
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.failures import LoadFailed

FEED, PERIOD, NEXT = "retail_monthly", "2025-03", "2025-04"
LIMIT = 128  # retail above_quota enterprise_name
ROW = 3


def _run(url: str, *periods: str) -> int:
    span = (
        ["--period", periods[0]]
        if len(periods) == 1
        else ["--from", periods[0], "--to", periods[1]]
    )
    return main(["run", "--feed", FEED, *span, "--url", url])


def _scalar(url: str, sql: str, **params) -> object:
    with engine_for(url).connect() as conn:
        return conn.execute(text(sql), params).scalar()


def _current_batch(url: str, period: str) -> str | None:
    b = schema.audit_load_batch
    with engine_for(url).connect() as conn:
        return conn.execute(
            select(b.c.batch_id).where(b.c.feed == FEED, b.c.period == period, b.c.is_current)
        ).scalar()


# --- the spec is the one source -------------------------------------------------------


def test_every_string_column_states_its_length_and_the_schema_and_suite_follow_it() -> None:
    for name in list_feeds():
        for stream in load_feed(name).streams:
            checked = {
                e["kwargs"]["column"]: e["kwargs"]["max_value"]
                for e in stream_suite(stream)["expectations"]
                if e["type"] == LENGTH_CHECK
            }
            for column in stream.columns:
                if column.type != "string":
                    assert column.max_length is None
                    continue
                assert column.length, f"{name}.{stream.name}.{column.name} states no length"
                for table in schema.FEED_TABLES[stream.table]:
                    if table is not None:
                        assert table.c[column.name].type.length == column.length
                assert checked[column.name] == column.length
    bare = replace(load_feed(FEED).streams[0].columns[1], length=None)
    assert bare.max_length == DEFAULT_TEXT_LENGTH


# --- over-long text is quarantined, text at the limit loads ----------------------------


def _one_row_held_and_the_others_loaded(url: str, capsys) -> dict:
    """``cm run`` of the period loads; its one quarantined row is ``ROW`` of above_quota
    (returned), and every other row received is in the core tables."""
    assert _run(url, PERIOD) == 0
    assert "loaded" in capsys.readouterr().out
    q = schema.audit_quarantine
    with engine_for(url).connect() as conn:
        held = conn.execute(select(q).where(q.c.feed == FEED)).mappings().all()
    assert [(r["stream"], r["row_number"]) for r in held] == [("above_quota", ROW)]
    received = _scalar(
        url, "select rows_received from audit_load_batch where feed = :f and is_current", f=FEED
    )
    loaded = _scalar(url, "select count(*) from core_retail_above_quota")
    totals = _scalar(url, "select count(*) from core_retail_district_totals")
    assert loaded + totals == received - 1
    return dict(held[0])


@pytest.mark.parametrize("char", ["长", "a"])  # 3 bytes and 1 byte: characters count
def test_an_over_long_name_quarantines_its_row_and_the_others_load(
    feed_server, warehouse_url: str, char: str, capsys
) -> None:
    feed_server.faults.add(
        "long_text",
        path="above-quota",
        period=PERIOD,
        column="enterprise_name",
        length=LIMIT + 1,
        row=ROW,
        char=char,
    )
    held = _one_row_held_and_the_others_loaded(warehouse_url, capsys)
    assert json.loads(held["failed_expectations"]) == [f"{LENGTH_CHECK}[enterprise_name]"]
    assert (
        _scalar(
            warehouse_url,
            "select max(length(enterprise_name)) from core_retail_above_quota",
        )
        <= LIMIT
    )
    argv = ["quarantine", "--feed", FEED, "--period", PERIOD, "--url", warehouse_url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"列「单位名称」(enterprise_name) 长 {LIMIT + 1} 个字符，超过上限 {LIMIT} 个字符" in out


def test_a_nul_in_a_name_quarantines_its_row_and_the_others_load(
    feed_server, warehouse_url: str, capsys
) -> None:
    """PostgreSQL's text cannot hold U+0000 (its COPY and INSERT refused the whole load):
    the row is quarantined as untypeable, the others load, on both backends."""
    feed_server.faults.add(
        "long_text", path="above-quota", period=PERIOD, column="enterprise_name", length=3,
        row=ROW, char="\x00",
    )  # fmt: skip
    held = _one_row_held_and_the_others_loaded(warehouse_url, capsys)
    assert "_unparseable" in held["failed_expectations"]


@pytest.mark.parametrize("char", ["长", "a"])
def test_text_exactly_at_the_limit_loads(
    feed_server, warehouse_url: str, char: str, capsys
) -> None:
    feed_server.faults.add(
        "long_text", path="above-quota", period=PERIOD, length=LIMIT, row=ROW, char=char
    )
    assert _run(warehouse_url, PERIOD) == 0
    assert "loaded" in capsys.readouterr().out
    assert _scalar(warehouse_url, "select count(*) from audit_quarantine") == 0
    assert (
        _scalar(
            warehouse_url,
            "select count(*) from core_retail_above_quota where enterprise_name = :v",
            v=char * LIMIT,
        )
        == 1
    )


def test_the_loader_refuses_over_long_text_on_every_backend(
    feed_server, warehouse_url: str
) -> None:
    """Text the validation let through (here: the spec's limit lowered since) fails the
    load with the column, limit and length on SQLite too, as PostgreSQL's varchar would."""
    spec = load_feed(FEED)
    batch = extract_step(spec, PERIOD, url=warehouse_url)
    validate_step(spec, batch, url=warehouse_url)
    stream = spec.stream("above_quota")
    columns = tuple(
        replace(c, length=4) if c.name == "enterprise_name" else c for c in stream.columns
    )
    narrowed = replace(spec, streams=(spec.streams[0], replace(stream, columns=columns)))
    with pytest.raises(LoadFailed) as failed:
        load_step(narrowed, batch, url=warehouse_url)
    message = str(failed.value)
    assert "列「单位名称」(enterprise_name)" in message and "超过上限 4 个字符" in message
    assert _current_batch(warehouse_url, PERIOD) is None
    assert _scalar(warehouse_url, "select count(*) from stg_retail_district_totals") == 0
    runs = schema.audit_load_run
    with engine_for(warehouse_url).connect() as conn:
        recorded = conn.execute(
            select(runs.c.outcome, runs.c.message).where(runs.c.step == "load")
        ).all()
    assert [r.outcome for r in recorded] == ["failed"] and "TextTooLong" in recorded[0].message


def test_check_lengths_counts_characters() -> None:
    stream = load_feed(FEED).stream("above_quota")
    row = {"period": PERIOD, "uscc": "x", "category_code": "c", "enterprise_name": "长" * LIMIT}
    check_lengths(stream, to_frame(stream, [row]))
    with pytest.raises(TextTooLong, match=f"长 {LIMIT + 1} 个字符"):
        check_lengths(stream, to_frame(stream, [{**row, "enterprise_name": "长" * (LIMIT + 1)}]))


# --- a load that fails: rolled back, recorded, alerted; the next period goes on ---------


def test_a_failed_load_is_recorded_rolled_back_and_alerted(
    feed_server, warehouse_url: str, alert_connections, capsys
) -> None:
    webhook, _ = alert_connections
    with capsys.disabled():  # Airflow sets its logging up on import: not on capsys's stream
        assert len(configured_channels()) == 2
    assert _run(warehouse_url, PERIOD) == 0
    first = _current_batch(warehouse_url, PERIOD)
    rows_before = _scalar(warehouse_url, "select count(*) from core_retail_district_totals")
    # a real constraint the revised batch breaks: staging's keys unique across batches
    with engine_for(warehouse_url).begin() as conn:
        conn.execute(
            text(
                "create unique index ix_one_version on stg_retail_district_totals "
                "(period, region_code, indicator_code)"
            )
        )
    feed_server.faults.add("revision", period=PERIOD, revision=1)
    capsys.readouterr()
    webhook.requests.clear()

    assert _run(warehouse_url, PERIOD, NEXT) == 1
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if re.match(r"^\d{4}-\d{2}  \S", line)]  # outcome lines
    assert len(lines) == 2, lines
    assert lines[0].startswith(PERIOD) and "failed" in lines[0] and "载入失败" in lines[0]
    assert "违反数据库约束 (IntegrityError)" in lines[0]
    assert lines[1].startswith(NEXT) and "loaded" in lines[1]

    runs = schema.audit_load_run
    with engine_for(warehouse_url).connect() as conn:
        failed = conn.execute(
            select(runs.c.batch_id, runs.c.message).where(
                runs.c.feed == FEED,
                runs.c.period == PERIOD,
                runs.c.step == "load",
                runs.c.outcome == "failed",
            )
        ).all()
    assert len(failed) == 1
    batch_id, message = failed[0]
    assert batch_id != first
    assert "\n" not in message and "Traceback" not in message
    assert "[SQL" not in message and "DETAIL" not in message and "Key (" not in message
    assert message in lines[0]
    # nothing half-loaded: the previous batch is still current, staging has nothing new
    assert _current_batch(warehouse_url, PERIOD) == first
    assert (
        _scalar(
            warehouse_url,
            "select count(*) from core_retail_district_totals where period = :p and batch_id <> :b",
            p=PERIOD,
            b=first,
        )
        == 0
    )
    assert (
        _scalar(
            warehouse_url,
            "select count(*) from core_retail_district_totals where period = :p",
            p=PERIOD,
        )
        == rows_before
    )
    for table in ("stg_retail_district_totals", "stg_retail_above_quota"):
        staged = _scalar(
            warehouse_url, f"select count(*) from {table} where batch_id = :b", b=batch_id
        )
        assert staged == 0, table
    assert _current_batch(warehouse_url, NEXT) is not None
    # the alert went out and is recorded
    alerts = schema.audit_alert
    with engine_for(warehouse_url).connect() as conn:
        sent = conn.execute(
            select(alerts.c.kind, alerts.c.channel, alerts.c.status, alerts.c.body).where(
                alerts.c.feed == FEED, alerts.c.period == PERIOD
            )
        ).all()
    assert {(a.kind, a.status) for a in sent} == {("failure", "sent")}
    assert any("载入失败" in a.body for a in sent)
    assert any("载入失败" in json.dumps(r["json"], ensure_ascii=False) for r in webhook.requests)
