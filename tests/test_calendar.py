"""Working days on the official holiday calendar: weekends, holidays, 调休 Saturdays.

Expected dates are counted by hand from the State Council notices, so a wrong entry in
``reference/prc_holidays.yaml`` or an off-by-one in the counting fails here. Past the
file's last year deadlines are counted by weekends alone and said so; 12315 months with
open cases are pulled again until they close, their rates provisional meanwhile.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from consumption_monitor.common.workdays import (
    FALLBACK_TYPES,
    CalendarError,
    fallback_warning,
    load_calendar,
    parse_calendar,
)

CAL = load_calendar()


def test_weekends_are_off_and_weekdays_on() -> None:
    assert CAL.is_workday(date(2025, 3, 10))  # Monday
    assert not CAL.is_workday(date(2025, 3, 8))  # Saturday
    assert not CAL.is_workday(date(2025, 3, 9))  # Sunday
    # received on a Friday: the 7th working day is the Tuesday after next weekend
    assert CAL.add_workdays(date(2025, 3, 7), 7) == date(2025, 3, 18)
    # received on a Saturday: counting starts on Monday
    assert CAL.add_workdays(date(2025, 3, 8), 1) == date(2025, 3, 10)


def test_spring_festival_is_skipped() -> None:
    holiday = [date(2025, 1, 28 + i) for i in range(4)] + [date(2025, 2, d) for d in (1, 2, 3, 4)]
    assert not any(CAL.is_workday(d) for d in holiday)
    assert CAL.add_workdays(date(2025, 1, 27), 1) == date(2025, 2, 5)
    # a complaint received on Sunday 2 February 2025: 5, 6, 7, 8 (调休), 10, 11, 12
    assert CAL.add_workdays(date(2025, 2, 2), 7) == date(2025, 2, 12)
    # 2024: 10–17 February off, Sunday 18 February worked
    assert CAL.add_workdays(date(2024, 2, 9), 1) == date(2024, 2, 18)


def test_adjusted_weekend_days_are_working_days() -> None:
    assert CAL.is_workday(date(2025, 2, 8))  # Saturday, 调休 for the Spring Festival
    assert CAL.is_workday(date(2025, 1, 26))  # Sunday, 调休
    assert CAL.add_workdays(date(2025, 2, 7), 1) == date(2025, 2, 8)
    # National Day 2025: 1–8 October off, Saturday 11 October worked
    assert CAL.add_workdays(date(2025, 9, 30), 7) == date(2025, 10, 16)
    assert CAL.workdays_between(date(2025, 9, 30), date(2025, 10, 16)) == 7


def test_fifteen_and_forty_five_working_days() -> None:
    # a report received on Friday 25 April 2025: Sunday 27 April worked, 1–5 May off
    assert CAL.add_workdays(date(2025, 4, 25), 15) == date(2025, 5, 20)
    accepted = date(2025, 9, 10)
    deadline = CAL.add_workdays(accepted, 45)
    assert CAL.workdays_between(accepted, deadline) == 45
    assert deadline == date(2025, 11, 18)  # via 28 Sep and 11 Oct worked, 1–8 Oct off


@pytest.mark.parametrize(("year", "working_days"), [(2024, 251), (2025, 248), (2026, 248)])
def test_working_days_per_year(year: int, working_days: int) -> None:
    """Weekdays, less the holidays falling on them, plus the 调休 weekend days."""
    days = [d for d in CAL.days() if d.day.year == year]
    assert sum(d.is_workday for d in days) == working_days
    assert {d.day_type for d in days} == {"workday", "weekend", "holiday", "adjusted_workday"}


def test_sequence_numbers_count_working_days() -> None:
    days = list(CAL.days())
    assert days[0].day == date(2024, 1, 1) and days[-1].day == date(2026, 12, 31)
    by_day = {d.day: d for d in days}
    start, end = date(2025, 1, 20), date(2025, 2, 20)
    assert by_day[end].workday_seq - by_day[start].workday_seq == CAL.workdays_between(start, end)
    assert by_day[date(2025, 2, 8)].holiday_name == "春节"


def test_past_the_last_year_weekends_only_then_refused() -> None:
    """2027 is not in the file: 2026-12-30 + 5 working days is 2027-01-06 counting weekends
    only (no 元旦 holiday), and that day is estimated; two years on, and before the first
    year, dates are refused."""
    assert CAL.last == date(2026, 12, 31) and not CAL.estimated(date(2026, 12, 31))
    assert CAL.add_workdays(date(2026, 12, 30), 5) == date(2027, 1, 6)
    assert CAL.estimated(date(2027, 1, 1)) and CAL.is_workday(date(2027, 1, 1))  # a Friday
    assert not CAL.is_workday(date(2027, 1, 2))  # Saturday
    assert CAL.is_workday(date(2028, 12, 29))
    with pytest.raises(CalendarError, match="2029"):
        CAL.is_workday(date(2029, 1, 2))
    with pytest.raises(CalendarError, match="2023"):
        CAL.is_workday(date(2023, 12, 29))
    assert CAL.with_lenience().add_workdays(date(2028, 12, 29), 1) == date(2029, 1, 1)
    days = list(CAL.days(fallback=True))
    assert days[-1].day == date(2028, 12, 31)
    assert {d.day_type for d in days if d.day.year >= 2027} == set(FALLBACK_TYPES)
    assert all(d.holiday_name is None for d in days if d.day.year >= 2027)
    assert days[-1].workday_seq - list(CAL.days())[-1].workday_seq == 261 + 260  # Mon-Fri


def test_the_fallback_is_announced_before_deadlines_reach_it() -> None:
    """Warned once deadlines (about three months ahead) can pass the last covered day."""
    assert fallback_warning(CAL, date(2026, 9, 30)) is None
    line = fallback_warning(CAL, date(2026, 10, 1))
    assert line and "2026-12-31" in line and "2027 年" in line and "prc_holidays.yaml" in line


def test_deadlines_past_the_calendar_are_estimated_and_open_months_repulled(
    feed_server, warehouse_url, monkeypatch, capsys
) -> None:
    """October 2026 served on 2026-12-20: mediation deadlines fall in January 2027, past
    the calendar; they are counted (not null), flagged, and the month's rates provisional.
    The month has a case still 办理中: it is open, `cm status` says so and the report's
    footnote too; `cm run --open` after the case closed loads the revision and closes it."""
    from consumption_monitor.cli import main
    from consumption_monitor.indicators.catalog import load_catalog
    from consumption_monitor.indicators.report.notes import report_notes
    from consumption_monitor.pipeline.repull import open_periods
    from consumption_monitor.pipeline.status import operations_status, render
    from consumption_monitor.pipeline.steps import run_period
    from consumption_monitor.warehouse.db import engine_for

    monkeypatch.setattr(feed_server, "as_of", date(2026, 12, 20))
    run_period("complaints_12315", "2026-10", url=warehouse_url)
    engine = engine_for(warehouse_url)
    with engine.connect() as conn:
        cases = conn.execute(
            text(
                "select count(*) as n, sum(deadline_estimated) as estimated, "
                "sum(case when deadline_date is null then 1 else 0 end) as unknown, "
                "min(case when deadline_estimated = 1 then deadline_date end) as first_estimated "
                "from mart_complaints_12315_cases"
            )
        ).one()
        monthly = {
            r.period: r
            for r in conn.execute(text("select * from mart_complaints_12315_monthly")).all()
        }
    assert cases.n > 30 and cases.estimated > 0 and cases.unknown == 0
    assert cases.first_estimated >= "2027-01-01"
    assert monthly["2027-01"].deadlines_estimated > 0 and monthly["2027-01"].is_provisional == 1
    assert monthly["2026-10"].is_provisional == 0
    catalog = load_catalog()
    assert any("暂按周末推算" in n for n in report_notes(engine, catalog, "2027-01"))
    opened = open_periods(engine, "complaints_12315")
    assert opened.due == ["2026-10"] and opened.counts["2026-10"] >= 1
    assert any("暂定值" in n for n in report_notes(engine, catalog, "2026-12"))
    status = operations_status(engine, date(2026, 11, 30))
    assert any("2027 年起" in w for w in status["warnings"])
    page = render(status)
    assert "【提醒】工作日历仅覆盖至 2026-12-31" in page and "仍有办理中记录的期别：2026-10" in page

    monkeypatch.setattr(feed_server, "as_of", date(2027, 4, 1))  # the case has closed since
    assert main(["run", "--feed", "complaints_12315", "--open", "--url", warehouse_url]) == 0
    assert "2026-10  loaded" in capsys.readouterr().out
    assert open_periods(engine, "complaints_12315").counts == {}
    assert not any("暂定值" in n for n in report_notes(engine, catalog, "2026-12"))
    assert main(["run", "--feed", "retail_monthly", "--open", "--url", warehouse_url]) == 2


@pytest.mark.parametrize(
    ("years", "message"),
    [
        ({2025: {"working_days": [{"date": "2025-03-10"}]}}, "weekend"),
        (
            {
                2025: {
                    "holidays": [{"name": "x", "from": "2025-02-08", "to": "2025-02-08"}],
                    "working_days": [{"date": "2025-02-08"}],
                }
            },
            "both",
        ),
        ({2024: {}, 2026: {}}, "contiguous"),
        ({2025: {"holidays": [{"name": "x", "from": "2025-05-05", "to": "2025-05-01"}]}}, "range"),
    ],
)
def test_a_contradictory_calendar_file_is_refused(years: dict, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_calendar({"years": years})
