"""Monthly periods ('YYYY-MM') and the NBS publication calendar (no January release)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from consumption_monitor.common.periods import (
    Period,
    PeriodError,
    last_full_month,
    period_of_interval_start,
    period_range,
    published_periods,
)

AS_OF = date(2025, 12, 20)


# --- parse / str -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year", "month"),
    [("2024-02", 2024, 2), ("2025-12", 2025, 12), ("1999-01", 1999, 1), (" 2025-03\n", 2025, 3)],
)
def test_parse(text: str, year: int, month: int) -> None:
    assert Period.parse(text) == Period(year, month)


@pytest.mark.parametrize("text", ["2024-02", "2025-11", "2025-01", "0999-10"])
def test_str_round_trips_with_zero_padding(text: str) -> None:
    assert str(Period.parse(text)) == text


def test_str_pads_month_and_year() -> None:
    assert str(Period(2025, 3)) == "2025-03"
    assert str(Period(812, 7)) == "0812-07"


@pytest.mark.parametrize(
    "text",
    [
        "2024-13",
        "2024-00",
        "2024-2",
        "24-02",
        "2024/02",
        "202402",
        "2024-02-01",
        "2024-02 x",
        "abcd-ef",
        "",
        "   ",
        None,
        202402,
    ],
)
def test_invalid_strings_raise_period_error(text: object) -> None:
    with pytest.raises(PeriodError):
        Period.parse(text)  # type: ignore[arg-type]


def test_period_error_is_a_value_error() -> None:
    assert issubclass(PeriodError, ValueError)


def test_periods_order_chronologically() -> None:
    periods = [Period(2025, 1), Period(2024, 12), Period(2024, 2), Period(2025, 11)]
    assert [str(p) for p in sorted(periods)] == ["2024-02", "2024-12", "2025-01", "2025-11"]
    assert Period(2024, 12) < Period(2025, 1)


# --- shift -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2024-12", 1, "2025-01"),
        ("2025-01", -1, "2024-12"),
        ("2024-11", 2, "2025-01"),
        ("2025-02", -2, "2024-12"),
        ("2025-03", -13, "2024-02"),
        ("2024-02", 22, "2025-12"),
        ("2024-12", 12, "2025-12"),
        ("2024-01", -12, "2023-01"),
        ("2025-06", 0, "2025-06"),
    ],
)
def test_shift_across_year_ends(start: str, months: int, expected: str) -> None:
    assert str(Period.parse(start).shift(months)) == expected


def test_shift_is_invertible() -> None:
    p = Period(2024, 2)
    for months in range(-30, 31):
        assert p.shift(months).shift(-months) == p


def test_first_day() -> None:
    assert Period(2024, 2).first_day == date(2024, 2, 1)
    assert Period.of(date(2024, 2, 29)) == Period(2024, 2)


# --- labels and the calendar ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "label"), [(2, "1-2月"), (3, "3月"), (1, "1月"), (10, "10月"), (12, "12月")]
)
def test_label(month: int, label: str) -> None:
    assert Period(2025, month).label == label


def test_only_january_is_not_published_alone() -> None:
    assert [m for m in range(1, 13) if not Period(2025, m).is_published_alone] == [1]


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2025, 12, 20), "2025-11"),
        (date(2025, 1, 1), "2024-12"),
        (date(2025, 1, 31), "2024-12"),
        (date(2024, 3, 31), "2024-02"),
        (date(2024, 3, 1), "2024-02"),
    ],
)
def test_last_full_month(today: date, expected: str) -> None:
    assert str(last_full_month(today)) == expected


def test_last_full_month_defaults_to_today() -> None:
    assert last_full_month() == Period.of(date.today()).shift(-1)


def test_period_range_is_inclusive_and_crosses_years() -> None:
    assert [str(p) for p in period_range("2024-11", "2025-02")] == [
        "2024-11",
        "2024-12",
        "2025-01",
        "2025-02",
    ]
    assert period_range(Period(2025, 3), "2025-03") == [Period(2025, 3)]
    assert period_range("2025-04", "2025-03") == []


def test_period_range_rejects_bad_bounds() -> None:
    with pytest.raises(PeriodError):
        period_range("2025-13", "2026-01")


def test_published_periods_have_no_januaries() -> None:
    periods = published_periods("2023-12", "2026-02")
    assert periods[0] == Period(2023, 12)
    assert periods[-1] == Period(2026, 2)
    assert all(p.month != 1 for p in periods)
    assert len(periods) == len(period_range("2023-12", "2026-02")) - 3  # 2024, 2025, 2026


def test_published_periods_of_the_sample_feed() -> None:
    periods = published_periods("2024-02", last_full_month(AS_OF))
    assert len(periods) == 21  # 2024-02..2024-12 (11) and 2025-02..2025-11 (10)
    assert str(periods[0]) == "2024-02"
    assert str(periods[-1]) == "2025-11"
    assert Period(2025, 1) not in periods
    assert published_periods("2025-01", "2025-01") == []


# --- DAG intervals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 2024-02-29T17:00Z is 2024-03-01T01:00 in Asia/Shanghai (UTC+8)
        (datetime(2024, 2, 29, 17, 0, tzinfo=UTC), "2024-03"),
        (datetime(2024, 2, 29, 16, 0, tzinfo=UTC), "2024-03"),  # exactly midnight local
        (datetime(2024, 2, 29, 15, 59, 59, tzinfo=UTC), "2024-02"),
        (datetime(2024, 12, 31, 16, 0, tzinfo=UTC), "2025-01"),
        (datetime(2024, 12, 31, 15, 59, tzinfo=UTC), "2024-12"),
        (datetime(2025, 3, 14, 16, 0, tzinfo=UTC), "2025-03"),  # a release-day interval
        (datetime(2025, 3, 1, 0, 0, tzinfo=timezone(timedelta(hours=8))), "2025-03"),
        (datetime(2025, 3, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5))), "2025-03"),
        (datetime(2025, 2, 28, 20, 0, tzinfo=timezone(timedelta(hours=-5))), "2025-03"),
    ],
)
def test_period_of_interval_start_uses_shanghai_time(start: datetime, expected: str) -> None:
    assert str(period_of_interval_start(start)) == expected


def test_period_of_interval_start_in_another_zone() -> None:
    start = datetime(2024, 2, 29, 17, 0, tzinfo=UTC)
    assert str(period_of_interval_start(start, tz="UTC")) == "2024-02"
    assert str(period_of_interval_start(start, tz="America/New_York")) == "2024-02"
