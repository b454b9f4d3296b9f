"""Working days on the official holiday calendar: weekends, holidays, 调休 Saturdays.

Expected dates are counted by hand from the State Council notices, so a wrong entry in
``reference/prc_holidays.yaml`` or an off-by-one in the counting fails here.
"""

from __future__ import annotations

from datetime import date

import pytest

from consumption_monitor.common.workdays import CalendarError, load_calendar, parse_calendar

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


def test_dates_outside_the_calendar_are_refused_unless_lenient() -> None:
    with pytest.raises(CalendarError, match="2027"):
        CAL.add_workdays(date(2026, 12, 30), 5)
    assert CAL.with_lenience().add_workdays(date(2026, 12, 30), 5) == date(2027, 1, 6)


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
