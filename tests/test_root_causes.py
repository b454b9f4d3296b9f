"""Messages that lead with the cause: a missing column, an empty stream or a column
unreadable throughout is said once; the checks that failed only because of it are folded
under it with their count; a library's exception text never reaches an operator.

Real pipeline runs against the sample feed server (faults ``drop_column``, ``bad_rows``),
on SQLite and PostgreSQL; the alert, the validation report and the summary are read back
from the warehouse as operators and the console see them.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from consumption_monitor.alerts import service
from consumption_monitor.alerts.message import Alert
from consumption_monitor.common.identifiers import uscc_check_char
from consumption_monitor.feeds.frames import to_frame
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.status import operations_status
from consumption_monitor.pipeline.status import render as render_status
from consumption_monitor.pipeline.steps import BatchRejected, run_period
from consumption_monitor.validation.causes import root_causes
from consumption_monitor.validation.reports import render_validation_report
from consumption_monitor.validation.runner import validate_batch
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for

FEED = "retail_monthly"
VALUE_YTD = "字段缺失：value_ytd（above_quota、district_totals）"
# what Great Expectations (or Python) says when a check cannot run
INTERNALS = ("BatchData", "list index", "Traceback", "Exception", "Error:", "does not exist")


def _operator_texts(alert: Alert) -> list[str]:
    return [alert.text(), alert.markdown(), alert.html(), alert.to_json()]


def _assert_no_internals(*texts: str) -> None:
    for text in texts:
        for word in INTERNALS:
            assert word not in text, (word, text)


def _section(alert: Alert, heading: str) -> tuple[str, ...] | None:
    return next((s.lines for s in alert.sections if s.heading == heading), None)


def _rejected(feed_server, url: str, period: str, *faults: tuple) -> BatchRejected:
    for kind, params in faults:
        feed_server.faults.add(kind, period=period, **params)
    with pytest.raises(BatchRejected) as caught:
        run_period(FEED, period, url=url)
    return caught.value


def _report(url: str, period: str) -> str:
    engine = engine_for(url)
    runs = schema.audit_load_run
    with engine.connect() as conn:
        run_id = conn.execute(
            select(runs.c.run_id).where(
                runs.c.feed == FEED, runs.c.period == period, runs.c.step == "validate"
            )
        ).scalar_one()
        return render_validation_report(conn, run_id)


def test_a_missing_column_is_said_once_and_its_consequences_are_folded(
    feed_server, warehouse_url
) -> None:
    error = _rejected(
        feed_server, warehouse_url, "2025-04", ("drop_column", {"column": "value_ytd"})
    )
    engine = engine_for(warehouse_url)
    alert = service.failure_alert(engine, FEED, "2025-04", error=error)
    assert alert is not None and alert.level == "critical"
    causes = _section(alert, "根本原因")
    assert causes == (f"{VALUE_YTD}；另有 8 项检查因此无法执行",)
    assert _section(alert, "未通过的校验") is None  # nothing failed on its own
    for text in _operator_texts(alert):
        assert text.count("value_ytd") == 1, text  # the cause, once
        assert "expect_column_values_to_not_be_null" not in text  # a consequence: folded
    _assert_no_internals(*_operator_texts(alert), str(error))
    assert str(error).endswith(f"{VALUE_YTD}；另有 8 项检查因此无法执行")  # the task's line

    page = _report(warehouse_url, "2025-04")
    _assert_no_internals(page)
    cause, real, folded = (page.index(h) for h in ("根本原因</h2>", "未通过的校验", "根本原因涉及"))
    assert cause < real < folded < page.index("<h2>通过的校验（")
    assert page.count("因此无法执行：") == 8 and page.count("未通过（即根本原因）") == 2

    with engine.connect() as conn:
        found = root_causes(conn, FEED, "2025-04")  # what the console reads
        v = schema.audit_validation_result
        technical = conn.execute(select(v.c.exception).where(v.c.exception.is_not(None))).all()
    assert [(c.kind, c.column, c.streams) for c in found] == [
        ("missing_column", "value_ytd", ("above_quota", "district_totals"))
    ]
    assert len(found[0].consequences) == 8 and len(found[0].evidence) == 2
    # the library's text is kept where engineers look: the technical column
    assert any("BatchData" in row.exception for row in technical)

    status = render_status(operations_status(engine))  # `cm status`
    assert f"根本原因：{VALUE_YTD}；另有 8 项检查因此无法执行" in status
    _assert_no_internals(status)


def test_independent_failures_are_listed_as_before(feed_server, sqlite_url) -> None:
    feed_server.faults.add("bad_rows", period="2025-03")
    run_period(FEED, "2025-03", url=sqlite_url)
    alert, facts = service.warning_alert(engine_for(sqlite_url), FEED, "2025-03")
    assert alert is not None and facts is not None and not facts.causes
    assert _section(alert, "根本原因") is None
    lines = _section(alert, "未通过的校验")
    assert lines is not None and len(lines) == len(facts.problems) == 9
    assert any("expect_column_values_to_be_in_set[region_code]" in line for line in lines)
    assert any("expect_column_values_to_be_in_set[_uscc_check_ok]" in line for line in lines)
    page = _report(sqlite_url, "2025-03")
    assert "根本原因" not in page and "expect_column_values_to_be_in_set[region_code]" in page


def test_a_cause_and_an_independent_failure_are_both_said(feed_server, warehouse_url) -> None:
    error = _rejected(
        feed_server,
        warehouse_url,
        "2025-03",
        ("drop_column", {"column": "value_ytd"}),
        ("bad_rows", {"which": ["wrong_region", "bad_uscc_check"]}),
    )
    alert = service.failure_alert(engine_for(warehouse_url), FEED, "2025-03", error=error)
    assert alert is not None
    assert _section(alert, "根本原因") == (f"{VALUE_YTD}；另有 8 项检查因此无法执行",)
    lines = _section(alert, "未通过的校验")
    assert lines is not None
    assert any("[region_code]" in line and "510402" in line for line in lines)
    assert any("[_uscc_check_ok]" in line for line in lines)
    assert not any("value_ytd" in line for line in lines)
    _assert_no_internals(*_operator_texts(alert), str(error))
    page = _report(warehouse_url, "2025-03")
    assert page.index(VALUE_YTD) < page.index("expect_column_values_to_be_in_set[region_code]")


def test_checks_on_a_derived_column_follow_its_input(feed_server, sqlite_url) -> None:
    """``_uscc_check_ok`` is computed from ``uscc`` (declared by the derivation): without
    ``uscc`` its check cannot run, and it is folded under the missing column."""
    error = _rejected(feed_server, sqlite_url, "2025-03", ("drop_column", {"column": "uscc"}))
    alert = service.failure_alert(engine_for(sqlite_url), FEED, "2025-03", error=error)
    assert alert is not None
    assert _section(alert, "根本原因") == (
        "字段缺失：uscc（above_quota）；另有 3 项检查因此无法执行",
    )
    assert _section(alert, "未通过的校验") is None
    _assert_no_internals(*_operator_texts(alert))


USCCS = tuple(f"91510403MA62XXXX{i}" + uscc_check_char(f"91510403MA62XXXX{i}") for i in (1, 2))


def _records(ytd: object) -> dict[str, list[dict]]:
    total = {
        "period": "2025-04",
        "region_code": "510403",
        "indicator_code": "retail_total",
        "value_month": 10.0,
        "value_ytd": 40.0,
        "yoy_month_pct": 1.0,
        "yoy_ytd_pct": 1.0,
        "unit": "万元",
    }
    unit = {
        "period": "2025-04",
        "region_code": "510403",
        "industry_code": "52",
        "category_code": "G01",
        "value_month": 1.0,
        "value_ytd": ytd,
        "unit": "万元",
    }
    units = [{**unit, "uscc": uscc, "enterprise_name": f"单位{i}"} for i, uscc in enumerate(USCCS)]
    return {"district_totals": [total], "above_quota": units}


def _validate(records: dict[str, list[dict]]):
    feed = load_feed(FEED)
    frames = {s.name: to_frame(s, records[s.name]) for s in feed.streams}
    return validate_batch(feed, "2025-04", "test-batch", frames)


def test_a_column_unreadable_throughout_and_an_empty_stream_are_causes() -> None:
    report = _validate(_records("十二万"))  # no value_ytd of above_quota is a number
    [cause] = report.causes
    assert (cause.kind, cause.column, cause.streams) == (
        "wrong_type",
        "value_ytd",
        ("above_quota",),
    )
    assert cause.message == "字段类型不符：value_ytd（above_quota）的值全部无法识别为数值"
    assert report.rejected and not report.unexplained("critical")
    assert json.loads(json.dumps(report.summary()))["root_causes"][0]["kind"] == "wrong_type"

    report = _validate({**_records(5.0), "above_quota": []})
    assert [(c.kind, c.streams) for c in report.causes] == [("empty_stream", ("above_quota",))]
    assert report.causes[0].message == "数据流无数据：above_quota"

    report = _validate(_records(5.0))  # a readable batch: no cause to name
    assert report.causes == []
