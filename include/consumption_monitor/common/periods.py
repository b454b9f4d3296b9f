"""Monthly statistical periods ('YYYY-MM') and the NBS publication calendar.

Periods are plain strings in the warehouse so that SQLite and PostgreSQL compare and sort
them the same way. January is never published on its own: NBS releases January and
February together as "1-2月" under the February period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

#: the bureau's time zone: periods, due dates, "today" and the DAG schedules use it (one home)
BUREAU_TIMEZONE = "Asia/Shanghai"
BUREAU_TZ = ZoneInfo(BUREAU_TIMEZONE)

PERIOD_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class PeriodError(ValueError):
    """Raised for a string that is not a valid 'YYYY-MM' period."""


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = PERIOD_RE.match(str(text).strip())
        if not match:
            raise PeriodError(f"invalid period {text!r}: expected YYYY-MM")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shift(self, months: int) -> Period:
        index = self.year * 12 + (self.month - 1) + months
        return Period(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def label(self) -> str:
        """The label NBS prints for the month column: '1-2月' for February, else 'N月'."""
        return "1-2月" if self.month == 2 else f"{self.month}月"

    @property
    def is_published_alone(self) -> bool:
        """False for January, which is published combined with February."""
        return self.month != 1


def bureau_today(now: datetime | None = None) -> date:
    """Today in the bureau's time zone (Asia/Shanghai), whatever the server's zone: what
    "the last full month" means for operators."""

    tz = BUREAU_TZ
    return (now or datetime.now(tz)).astimezone(tz).date()


def last_full_month(today: date | None = None) -> Period:
    """The most recent month that has ended on ``today``."""
    return Period.of(today or date.today()).shift(-1)


def period_range(start: str | Period, end: str | Period) -> list[Period]:
    """Every month from ``start`` to ``end`` inclusive."""
    first = start if isinstance(start, Period) else Period.parse(start)
    last = end if isinstance(end, Period) else Period.parse(end)
    out: list[Period] = []
    current = first
    while current <= last:
        out.append(current)
        current = current.shift(1)
    return out


def published_periods(start: str | Period, end: str | Period) -> list[Period]:
    """The periods with a release of their own in ``[start, end]`` (no Januaries)."""
    return [p for p in period_range(start, end) if p.is_published_alone]


def period_of_interval_start(start: datetime, tz: str = BUREAU_TIMEZONE) -> Period:
    """The statistical period of a DAG run: the calendar month its data interval starts in.

    Feed DAGs use a monthly interval that starts on the release day (e.g. the 15th), so the
    run fires after the release lag; the month of the interval start, in the bureau's time
    zone, is the period the run loads. Never derived from "now".
    """
    local = start.astimezone(ZoneInfo(tz)) if start.tzinfo else start
    return Period(local.year, local.month)
