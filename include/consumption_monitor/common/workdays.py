"""Working-day arithmetic on the official PRC holiday calendar (kept as data).

Why a module of its own: statutory deadlines are set in working days (12315: accept a
complaint within 7, end mediation within 45 of acceptance, check a report within 15), and
"working day" depends on that year's State Council notice: public holidays are off whatever
the weekday, and some weekends become working days (调休). The calendar therefore lives in
``reference/prc_holidays.yaml``; this module only reads it and counts.

Counting follows the administrative rule that the day an event happens is not counted: the
deadline of "within N working days of D" is the N-th working day after D, inclusive.
The same numbering (``workday_seq``) is loaded into the warehouse (``ref_workday_calendar``)
so that SQL views compute the same deadlines.

Past the file's last year (issue 15 §4): a deadline of a case received in late
November or December falls into a year whose State Council notice may not be in the file
yet; without a fallback those cases dropped out of the rates. For ``FALLBACK_YEARS``
after the last covered year the calendar counts weekends only (no public holidays, no
调休), marks those days ``fallback_workday`` / ``fallback_weekend`` and says so
(:func:`fallback_warning`, shown by ``cm status`` and the monthly report), until the
year's notice is added to ``reference/prc_holidays.yaml`` (next ``cm migrate`` reloads
the table and the views recompute every deadline). Before the first covered year dates
are still refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SATURDAY, SUNDAY = 5, 6
REFERENCE_FILE = "prc_holidays.yaml"
FALLBACK_YEARS = 2  # years after the file's last one counted by weekends alone
FALLBACK_TYPES = ("fallback_workday", "fallback_weekend")


class CalendarError(ValueError):
    """A date outside the calendar's years, or a calendar file that contradicts itself."""


@dataclass(frozen=True)
class CalendarDay:
    """One date as the warehouse stores it."""

    day: date
    is_workday: bool
    workday_seq: int  # working days from the calendar's first date up to this one, inclusive
    day_type: str  # workday | weekend | holiday | adjusted_workday (调休上班)
    holiday_name: str | None


@dataclass(frozen=True, eq=False)
class WorkdayCalendar:
    """Working days of the covered years, then ``FALLBACK_YEARS`` counted by weekends alone
    (:meth:`estimated`); ``lenient`` treats any other year as weekends-only too."""

    first: date
    last: date
    holidays: Mapping[date, str]
    working_weekends: Mapping[date, str]
    lenient: bool = False

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last

    @property
    def fallback_last(self) -> date:
        """The last day counted by the weekends-only fallback."""
        return date(self.last.year + FALLBACK_YEARS, 12, 31)

    def estimated(self, day: date) -> bool:
        """The day lies past the file's last year: counted by weekends alone."""
        return day > self.last

    def is_workday(self, day: date) -> bool:
        if not (self.first <= day <= self.fallback_last) and not self.lenient:
            raise CalendarError(
                f"工作日历未覆盖 {day.isoformat()}（已覆盖 {self.first} 至 {self.last}，"
                f"之后 {FALLBACK_YEARS} 年按周末推算），"
                f"请在 reference/{REFERENCE_FILE} 中补充该年度的放假安排"
            )
        if day in self.holidays:
            return False
        if day in self.working_weekends:
            return True
        return day.weekday() not in (SATURDAY, SUNDAY)

    def add_workdays(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself is not counted)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        day, left = start, n
        while left:
            day += timedelta(days=1)
            if self.is_workday(day):
                left -= 1
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]``: how many working days ``end`` came after."""
        if end <= start:
            return 0
        return sum(
            self.is_workday(start + timedelta(days=i)) for i in range(1, (end - start).days + 1)
        )

    def days(self, *, fallback: bool = False) -> Iterator[CalendarDay]:
        """Every covered date in order, numbered by working days (for the warehouse);
        ``fallback`` adds the weekends-only years after the last covered one."""
        seq = 0
        day = self.first
        while day <= (self.fallback_last if fallback else self.last):
            workday = self.is_workday(day)
            seq += workday
            if self.estimated(day):
                kind, name = FALLBACK_TYPES[0] if workday else FALLBACK_TYPES[1], None
            elif day in self.holidays:
                kind, name = "holiday", self.holidays[day]
            elif day in self.working_weekends:
                kind, name = "adjusted_workday", self.working_weekends[day]
            else:
                kind, name = ("workday" if workday else "weekend"), None
            yield CalendarDay(day, workday, seq, kind, name)
            day += timedelta(days=1)

    def with_lenience(self) -> WorkdayCalendar:
        """The same calendar, counting uncovered years by weekends alone (sample data only)."""
        return WorkdayCalendar(self.first, self.last, self.holidays, self.working_weekends, True)


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CalendarError(f"{where}: {value!r} is not an ISO date") from None


def parse_calendar(raw: Mapping[str, Any]) -> WorkdayCalendar:
    """Build and sanity-check a calendar from the YAML document."""
    years = sorted(int(y) for y in (raw.get("years") or {}))
    if not years:
        raise CalendarError("the calendar lists no years")
    if years != list(range(years[0], years[-1] + 1)):
        raise CalendarError(f"the calendar's years must be contiguous, got {years}")
    holidays: dict[date, str] = {}
    working: dict[date, str] = {}
    for year in years:
        block = raw["years"].get(year) or raw["years"].get(str(year)) or {}
        for item in block.get("holidays") or []:
            where = f"{year} {item.get('name')}"
            first, last = _as_date(item["from"], where), _as_date(item["to"], where)
            if first.year != year or last.year != year or last < first:
                raise CalendarError(f"{where}: {first}..{last} is not a range inside {year}")
            for offset in range((last - first).days + 1):
                holidays[first + timedelta(days=offset)] = str(item["name"])
        for item in block.get("working_days") or []:
            day = _as_date(item["date"], f"{year} working day")
            if day.year != year or day.weekday() not in (SATURDAY, SUNDAY):
                raise CalendarError(f"{year}: working day {day} is not a weekend day of {year}")
            working[day] = str(item.get("for", ""))
    clash = sorted(set(holidays) & set(working))
    if clash:
        raise CalendarError(f"dates both holiday and working day: {clash}")
    return WorkdayCalendar(date(years[0], 1, 1), date(years[-1], 12, 31), holidays, working)


def reference_path() -> Path:
    return Path(str(resources.files("consumption_monitor") / "reference" / REFERENCE_FILE))


@cache
def load_calendar(path: Path | None = None) -> WorkdayCalendar:
    """The official calendar (``reference/prc_holidays.yaml``), read once per process."""
    source = path or reference_path()
    return parse_calendar(yaml.safe_load(source.read_text(encoding="utf-8")))


def fallback_warning(calendar: WorkdayCalendar, today: date, horizon_days: int = 92) -> str | None:
    """One Chinese line when deadlines within ``horizon_days`` of ``today`` (45 working
    days of mediation plus 7 to accept reach about three months ahead) fall past the
    file's last year, so they are counted by weekends alone; None otherwise."""
    if today + timedelta(days=horizon_days) <= calendar.last:
        return None
    year = calendar.last.year + 1
    return (
        f"工作日历仅覆盖至 {calendar.last.isoformat()}：{year} 年起的法定时限暂按周末推算"
        f"（未计法定节假日和调休），相关 12315 按时率为估算值；"
        f"请在 reference/{REFERENCE_FILE} 补充国务院办公厅 {year} 年部分节假日安排后运行 cm migrate"
    )
