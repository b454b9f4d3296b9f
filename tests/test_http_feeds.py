"""The online retail, employment and 12315 feeds through the real pipeline.

Each feed is a spec, suites, tables and sample data on the generic engine; these tests run
every one of them the same way (parametrised), against the real feed server, on the SQLite
file and on PostgreSQL: a clean period loads and reruns unchanged, a period with defective
rows loads its good rows and quarantines the others with their reasons.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from cm_devtools.sample_server import catalog
from cm_devtools.sample_server.common import feed_codes
from consumption_monitor.common.periods import Period
from consumption_monitor.common.workdays import load_calendar
from consumption_monitor.feeds.frames import to_frame
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.validation import derivation_registry, derivations
from consumption_monitor.validation.suites import read_suite
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.digest import warehouse_digest
from consumption_monitor.warehouse.reference import refresh_reference

NEW_FEEDS = ("ecommerce_monthly", "employment_monthly", "complaints_12315")


@dataclass(frozen=True)
class Case:
    """How one feed is exercised: a clean period, and a period served with defects."""

    feed: str
    clean: str
    mart: str  # the mart view that must show the clean period
    bad: str
    before_bad: str | None  # loaded first, so that YTD checks have a previous period
    which: tuple[str, ...] | None  # the defects injected (None: every declared one)
    # stream -> row number -> a fragment of each expected failed-expectation label
    quarantined: dict[str, dict[int, tuple[str, ...]]]
    warnings: set[str] = field(default_factory=set)  # stream:column of failed warnings


CASES = (
    Case(
        "ecommerce_monthly",
        clean="2025-03",
        mart="mart_ecommerce_monthly",
        bad="2025-04",
        before_bad="2025-03",
        which=None,
        quarantined={
            "platform_sales": {
                2: ("between[online_sales]", "[online_sales,live_sales]"),
                5: ("[online_sales,live_sales]",),
                8: ("[_unparseable]",),
                11: ("in_set[platform]",),
                17: ("in_set[period]",),
                20: ("unique",),
                21: ("unique",),
            },
            "district_online": {},
        },
        warnings={"district_online:_ytd_monotonic_ok", "platform_sales:_uscc_check_ok"},
    ),
    Case(
        "employment_monthly",
        clean="2025-04",
        mart="mart_employment_monthly",
        bad="2025-05",
        before_bad="2025-04",
        which=(
            "hires_exceed_attendees",
            "date_outside_period",
            "unknown_mode",
            "negative_count",
            "ytd_decrease",
        ),
        quarantined={
            "job_fairs": {
                1: ("[attendees,hires]",),
                2: ("[_event_date_in_period]",),
                3: ("in_set[mode]",),
                4: ("between[jobs_offered]",),
            },
            "monthly_figures": {},
        },
        warnings={"monthly_figures:_ytd_monotonic_ok", "job_fairs:jobs_offered,hires"},
    ),
    Case(
        "complaints_12315",
        clean="2025-03",
        mart="mart_complaints_12315_cases",
        bad="2025-04",
        before_bad=None,
        which=None,
        quarantined={
            "cases": {
                9: ("[_unparseable]", "not_be_null[received_date]"),
                12: ("in_set[outcome]",),
                15: ("in_set[case_type]",),
                18: ("[_received_date_in_period]",),
                21: ("unique",),
                22: ("unique",),
                31: ("[closed_date,received_date]", "[closed_date,accepted_date]"),
                37: ("[accepted_date,received_date]",),
            }
        },
    ),
)


def scalar(url: str, sql: str, **params) -> object:
    with engine_for(url).connect() as conn:
        return conn.execute(text(sql), params).scalar()


# --- the definitions agree with each other (no database, no GX) --------------------------


def _suite_columns(suite: dict) -> set[str]:
    names: set[str] = set()
    for exp in suite["expectations"]:
        kwargs = exp["kwargs"]
        names.update(kwargs.get(k) for k in ("column", "column_A", "column_B") if k in kwargs)
        names.update(kwargs.get("column_list", []))
    return names


@pytest.mark.parametrize("feed", ["retail_monthly", *NEW_FEEDS])
def test_spec_suites_derivations_and_tables_fit_together(feed: str) -> None:
    """Every column a suite tests is declared or derived; every derivation's parameters
    fit; every stream has its tables."""
    spec = load_feed(feed)
    for stream in spec.streams:
        ctx = derivation_registry.DeriveContext(
            period="2025-03", frames={}, keys={stream.name: stream.keys}
        )
        frame = derivation_registry.apply(stream.derive, to_frame(stream, []), stream.name, ctx)
        missing = _suite_columns(read_suite(stream.suite_name)) - set(frame.columns)
        assert missing == set(), f"{stream.suite_name} tests undeclared columns {missing}"
        for step in stream.derive:
            signature = inspect.signature(derivation_registry.REGISTRY[step.name])
            signature.bind(frame, stream.name, ctx, **step.kwargs)
        assert {f"stg_{stream.table}", f"core_{stream.table}"} <= set(schema.metadata.tables)


@pytest.mark.parametrize("feed", NEW_FEEDS)
def test_the_sample_server_publishes_what_the_spec_expects(feed: str) -> None:
    spec, served = load_feed(feed), catalog.feeds()[feed]
    assert {s.name: s.path for s in spec.streams} == {s.name: s.path for s in served.streams}
    assert {s.name: s.paginator.kind for s in spec.streams} == {
        s.name: s.paging for s in served.streams
    }
    published = [m for m in range(1, 13) if served.is_published_alone(Period(2025, m))]
    assert list(spec.published_months) == published
    assert spec.unit == served.unit


def test_suite_code_lists_are_the_reference_lists() -> None:
    codes = feed_codes()

    def value_set(suite: str, column: str, condition: str | None = None) -> list[str]:
        for exp in read_suite(suite)["expectations"]:
            kwargs = exp["kwargs"]
            if (
                exp["type"] == "expect_column_values_to_be_in_set"
                and kwargs["column"] == column
                and kwargs.get("row_condition") == condition
            ):
                return kwargs["value_set"]
        raise AssertionError(f"{suite} has no value set for {column} ({condition})")

    assert value_set("ecommerce_platform_sales", "platform") == codes["platforms"]
    assert value_set("employment_job_fairs", "mode") == codes["job_fair_modes"]
    cases = "complaints_12315_cases"
    assert value_set(cases, "case_type") == codes["case_types"]
    assert value_set(cases, "matter_type") == codes["matter_types"]
    assert value_set(cases, "handling_unit") == codes["handling_units"]
    complaint, report = codes["complaint_outcomes"], codes["report_outcomes"]
    assert value_set(cases, "outcome", 'case_type == "投诉"') == complaint
    assert value_set(cases, "outcome", 'case_type == "举报"') == report
    assert set(value_set(cases, "outcome")) == set(complaint) | set(report)


# --- generic derivations ---------------------------------------------------------------


def _ytd_frame(**values: float | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": ["2025-04"],
            "region_code": ["510403"],
            **{k: pd.array([v], dtype="float64") for k, v in values.items()},
        }
    )


@pytest.mark.parametrize(
    ("period", "previous", "current", "expected"),
    [
        ("2025-04", 100.0, 120.0, True),
        ("2025-04", 100.0, 100.0, True),
        ("2025-04", 100.0, 90.0, False),
        ("2025-04", None, 90.0, None),  # no previous value: not applicable
        ("2025-01", 1000.0, 90.0, None),  # January opens a new year
    ],
)
def test_ytd_monotonic(period: str, previous, current, expected) -> None:
    frame = _ytd_frame(a_ytd=current, b_ytd=current).assign(period=period)
    prior = _ytd_frame(a_ytd=previous, b_ytd=0.0) if previous is not None else None
    ctx = derivation_registry.DeriveContext(
        period=period,
        frames={},
        previous={"s": prior} if prior is not None else {},
        keys={"s": ("period", "region_code")},
    )
    out = derivations.ytd_monotonic(frame, "s", ctx, columns=["a_ytd", "b_ytd"])
    value = out["_ytd_monotonic_ok"].iloc[0]
    assert (None if pd.isna(value) else bool(value)) == expected


def test_date_in_period() -> None:
    frame = pd.DataFrame({"d": ["2025-03-01", "2025-03-31", "2025-04-01", None]}, dtype=object)
    ctx = derivation_registry.DeriveContext(period="2025-03", frames={})
    out = derivations.date_in_period(frame, "s", ctx, column="d")["_d_in_period"]
    assert [None if pd.isna(v) else bool(v) for v in out] == [True, True, False, None]


# --- through the pipeline, on SQLite and PostgreSQL -----------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.feed)
def test_a_clean_period_loads_and_reruns_unchanged(feed_server, warehouse_url, case) -> None:
    out = run_period(case.feed, case.clean, url=warehouse_url)
    assert out["validation"]["verdict"] == "passed"
    assert out["load"]["rows"] == out["batch"]["rows"]
    for stream in load_feed(case.feed).streams:
        core = f"core_{stream.table}"
        loaded = scalar(
            warehouse_url, f"select count(*) from {core} where period = :p", p=case.clean
        )
        assert loaded == out["batch"]["rows"][stream.name]
    shown = scalar(
        warehouse_url, f"select count(*) from {case.mart} where period = :p", p=case.clean
    )
    assert shown >= 1
    before = warehouse_digest(engine_for(warehouse_url))
    again = run_period(case.feed, case.clean, url=warehouse_url)
    assert again["load"]["outcome"] == "unchanged"
    assert again["batch"]["batch_id"] == out["batch"]["batch_id"]
    assert warehouse_digest(engine_for(warehouse_url)) == before


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.feed)
def test_defective_rows_are_quarantined_with_reasons(feed_server, warehouse_url, case) -> None:
    if case.before_bad:
        run_period(case.feed, case.before_bad, url=warehouse_url)
    params = {"which": list(case.which)} if case.which else {}
    feed_server.faults.add("bad_rows", period=case.bad, **params)
    out = run_period(case.feed, case.bad, url=warehouse_url)

    assert out["validation"]["verdict"] == ("warning" if case.warnings else "passed")
    warned = {
        f"{label.split(':')[0]}:{label.split('[')[1].rstrip(']')}"
        for label in out["validation"]["failed_warning"]
    }
    assert case.warnings <= warned
    with engine_for(warehouse_url).connect() as conn:
        rows = conn.execute(
            text(
                "select stream, row_number, failed_expectations, raw_values "
                "from audit_quarantine where period = :p"
            ),
            {"p": case.bad},
        ).fetchall()
    held: dict[str, dict[int, list[str]]] = {}
    raw: dict[tuple[str, int], dict] = {}
    for stream, row, labels, values in rows:
        held.setdefault(stream, {})[row] = json.loads(labels)
        raw[(stream, row)] = json.loads(values)
    for stream, expected in case.quarantined.items():
        assert sorted(held.get(stream, {})) == sorted(expected), stream
        for row, fragments in expected.items():
            for fragment in fragments:
                assert any(fragment in label for label in held[stream][row]), (row, fragment)
        received = out["batch"]["rows"][stream]
        assert out["load"]["rows"][stream] + len(expected) == received
    if case.feed == "ecommerce_monthly":  # the raw value, as received, not a coerced one
        assert raw[("platform_sales", 8)]["live_sessions"] == 12.5
        assert raw[("platform_sales", 11)]["platform"] == "拼多多"
    if case.feed == "complaints_12315":
        assert raw[("cases", 9)]["received_date"] == "2025-04-32"


# --- 12315 deadlines: the SQL view counts working days as the calendar module does ----


def _expected_deadlines(row) -> tuple[str | None, str | None, int | None]:
    """(accept deadline, final deadline, on time) computed in Python."""
    cal = load_calendar()
    received = date.fromisoformat(row.received_date)
    if row.case_type == "举报":
        deadline = cal.add_workdays(received, 15).isoformat()
        done = row.checked_date
        return None, deadline, None if done is None else int(done <= deadline)
    accept_by = cal.add_workdays(received, 7).isoformat()
    if row.outcome == "不予受理":
        deadline = accept_by
    elif row.accepted_date is None:
        deadline = None
    else:
        deadline = cal.add_workdays(date.fromisoformat(row.accepted_date), 45).isoformat()
    if row.closed_date is None or deadline is None:
        return accept_by, deadline, None
    return accept_by, deadline, int(row.closed_date <= deadline and row.accepted_date <= accept_by)


def test_complaint_deadlines_follow_the_holiday_calendar(feed_server, warehouse_url) -> None:
    """January and February 2025 span the Spring Festival and its 调休 weekend days."""
    for period in ("2025-01", "2025-02"):
        run_period("complaints_12315", period, url=warehouse_url)
    with engine_for(warehouse_url).connect() as conn:
        cases = conn.execute(text("select * from mart_complaints_12315_cases")).fetchall()
        monthly = (
            conn.execute(text("select * from mart_complaints_12315_monthly order by period"))
            .mappings()
            .all()
        )
        assert refresh_reference(conn) == []  # unchanged file: not reloaded
        workdays = conn.execute(text("select count(*) from ref_workday_calendar")).scalar()
    assert len(cases) > 80 and workdays == 366 + 365 + 365 + 365 + 366  # + 2 fallback years
    crossing = 0
    for row in cases:
        accept_by, deadline, on_time = _expected_deadlines(row)
        assert (row.accept_deadline, row.deadline_date, row.on_time) == (
            accept_by,
            deadline,
            on_time,
        ), row.case_id
        if deadline and deadline[:7] != row.received_date[:7]:
            crossing += 1
    assert crossing > 0
    due = sum(r["complaints_due"] + r["reports_due"] for r in monthly)
    assert due == sum(1 for r in cases if r.deadline_date is not None)
    for r in monthly:
        if r["complaints_due"]:
            expected = round(100.0 * r["complaints_on_time"] / r["complaints_due"], 2)
            assert float(r["complaint_on_time_rate_pct"]) == pytest.approx(expected)
