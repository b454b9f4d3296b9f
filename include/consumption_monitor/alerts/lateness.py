"""When a feed's period is due, and which periods are late.

A spec declares ``due`` as ``{day: 15}`` (the 15th of the following month, moved to the next
working day when the 15th is not one) or ``{workday: 8}`` (the 8th working day of the
following month), optionally with ``months_after`` (default 1). Without ``due`` the release
day is the due day. Working days come from the PRC calendar (``calendar.py``), so a due
date never falls on a holiday or an unworked weekend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from consumption_monitor.common.periods import Period, period_range
from consumption_monitor.common.workdays import WorkdayCalendar, load_calendar
from consumption_monitor.feeds.spec import FeedSpec

DEFAULT_LOOKBACK_MONTHS = 4  # the last N months; older periods are history, not an alert


@dataclass(frozen=True)
class LatePeriod:
    feed: str
    period: str
    due: date


def due_date(spec: FeedSpec, period: str | Period, calendar: WorkdayCalendar | None = None) -> date:
    """The day by which ``period`` of ``spec`` should be loaded (end of that day)."""
    cal = calendar or load_calendar()
    rule = dict(spec.due) or {"day": spec.release_day}
    p = period if isinstance(period, Period) else Period.parse(period)
    first = p.shift(int(rule.get("months_after", 1))).first_day
    if "workday" in rule:
        return cal.add_workdays(first - timedelta(days=1), int(rule["workday"]))
    day = first.replace(day=int(rule["day"]))
    while not cal.is_workday(day):
        day += timedelta(days=1)
    return day


def candidate_periods(
    spec: FeedSpec, today: date, lookback_months: int = DEFAULT_LOOKBACK_MONTHS
) -> list[Period]:
    """Published periods among the last ``lookback_months`` months ended by ``today``."""
    last = Period.of(today).shift(-1)
    first = max(Period.parse(spec.first_period), last.shift(1 - lookback_months))
    return [p for p in period_range(first, last) if p.month in spec.published_months]


def late_periods(
    spec: FeedSpec,
    today: date,
    loaded: set[str],
    *,
    lookback_months: int = DEFAULT_LOOKBACK_MONTHS,
    calendar: WorkdayCalendar | None = None,
) -> list[LatePeriod]:
    """Periods past their due date on ``today`` that are not in ``loaded``."""
    out = []
    for p in candidate_periods(spec, today, lookback_months):
        due = due_date(spec, p, calendar)
        if today > due and str(p) not in loaded:
            out.append(LatePeriod(spec.name, str(p), due))
    return out
