"""Deterministic 12315 complaint and report cases for 西区 (510403).

Why generated: measure 19 asks that complaints be closed and reports checked on time
(投诉按时办结率、举报按时核查率 ≥ 99 %). The deadlines are counted in working days on the
official holiday calendar (:mod:`consumption_monitor.common.workdays`), so the sample cases are
built on that same calendar: a test can recompute every deadline.

Model, per month of receipt (the feed's period; January is published):

* ~50 complaints (投诉: more in the Spring Festival month, March (3·15) and November
  (双11)) and ~12 reports (举报), received on any day, fewer at weekends and holidays.
* Complaints: accepted or declined 1–7 working days after receipt (rarely 8–9: late);
  declined (不予受理, 10 %) close on the decision; withdrawn (撤回投诉终止, 5 %) close 1–10
  working days after acceptance; mediated ones close 2–30 (调解成功, 68 %) or 15–45
  (调解不成功终止) working days after acceptance, rarely 46–50 (late).
* Reports: checked 3–15 working days after receipt (rarely 16–18: late); 40 % 核查属实.
* A case whose next step falls after the server's "today" is served as it stands then:
  outcome 办理中 and the later dates empty. A revision flips ~5 % of mediation outcomes.

Defects (``bad_rows``), at fixed positions of the rows sorted by case id (the first
fitting row from there on): ``closed_before_received`` 30 and ``accepted_before_received``
36 (complaints: the reports, sorted first, never fill 30 rows), ``bad_date`` 9 (an
impossible date), ``unknown_outcome`` 12, ``unknown_type`` 15, ``received_outside_period``
18, ``duplicate_key`` 21.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from cm_devtools.sample_server import common
from cm_devtools.sample_server.common import REGION_CODE, days_of, feed_codes, rng
from cm_devtools.sample_server.served import Defect, ServedFeed, ServedStream
from consumption_monitor.common.periods import Period
from consumption_monitor.common.workdays import WorkdayCalendar, load_calendar

FEED = "complaints_12315"
FIRST_PERIOD = Period(2024, 1)
PENDING = "办理中"
UNKNOWN_OUTCOME = "已办结"
UNKNOWN_TYPE = "咨询"
_SPRING_FESTIVAL_MONTH = {2024: 2, 2025: 1, 2026: 2, 2027: 2, 2028: 1, 2029: 2}
_DECISION_DAYS = (1, 2, 3, 4, 5, 6, 7)
_DECISION_WEIGHTS = (35, 25, 15, 10, 7, 5, 3)


def _calendar() -> WorkdayCalendar:
    return load_calendar().with_lenience()


def _volumes(period: Period) -> tuple[int, int]:
    """(complaints, reports) received in the month."""
    draw = rng("12315", "volume", period)
    season = 1.0
    if period.month == _SPRING_FESTIVAL_MONTH.get(period.year, 2):
        season += 0.25
    if period.month in (3, 11):
        season += 0.20
    trend = 1.04 ** (period.year - 2024)
    return round(48 * season * trend * draw.uniform(0.85, 1.15)), round(12 * draw.uniform(0.7, 1.3))


def _received_days(period: Period, count: int, kind: str) -> list[date]:
    """Receipt dates, weighted: weekdays 1, weekends 0.5, public holidays 0.4."""
    cal = _calendar()
    days = days_of(period)
    weights = [0.4 if d in cal.holidays else (1.0 if d.weekday() < 5 else 0.5) for d in days]
    draw = rng("12315", "received", period, kind)
    return sorted(draw.choices(days, weights=weights, k=count))


def _complaint(case_id: str, received: date, revision: int) -> dict[str, Any]:
    cal = _calendar()
    draw = rng("12315", "case", case_id)
    decision = draw.choices(_DECISION_DAYS, weights=_DECISION_WEIGHTS)[0]
    if draw.random() < 0.003:
        decision = draw.randint(8, 9)
    accepted = cal.add_workdays(received, decision)
    pick = draw.random()
    if pick < 0.10:
        outcome, lag = "不予受理", 0
    elif pick < 0.15:
        outcome, lag = "撤回投诉终止", draw.randint(1, 10)
    elif pick < 0.83:
        outcome, lag = "调解成功", round(draw.triangular(2, 30, 8))
    else:
        outcome, lag = "调解不成功终止", draw.randint(15, 45)
        if draw.random() < 0.02:
            lag = draw.randint(46, 50)
    if (
        revision > 0
        and outcome.startswith("调解")
        and rng("12315", "rev", case_id, revision).random() < 0.05
    ):
        outcome = "调解不成功终止" if outcome == "调解成功" else "调解成功"
    return {
        "accepted_date": accepted,
        "closed_date": cal.add_workdays(accepted, lag),
        "checked_date": None,
        "outcome": outcome,
    }


def _report(case_id: str, received: date) -> dict[str, Any]:
    draw = rng("12315", "case", case_id)
    lag = draw.randint(3, 15) if draw.random() >= 0.008 else draw.randint(16, 18)
    return {
        "accepted_date": None,
        "closed_date": None,
        "checked_date": _calendar().add_workdays(received, lag),
        "outcome": "核查属实" if draw.random() < 0.4 else "核查不属实",
    }


def _as_seen_on(case: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The case as the platform shows it on ``as_of``: later steps not taken yet."""
    if case["accepted_date"] is not None and case["accepted_date"] > as_of:
        case["accepted_date"] = None
    for field in ("closed_date", "checked_date"):
        if case[field] is not None and case[field] > as_of:
            case[field] = None
            case["outcome"] = PENDING
    if case["accepted_date"] is None and case["checked_date"] is None:
        case["closed_date"], case["outcome"] = None, PENDING
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in case.items()}


def case_rows(period: Period, revision: int = 0, as_of: date | None = None) -> list[dict[str, Any]]:
    """Every case received in the period, sorted by case id (JB… reports, then TS…)."""
    as_of = as_of or date.today()
    codes = feed_codes()
    complaints, reports = _volumes(period)
    rows = []
    for kind, case_type, count in (("JB", "举报", reports), ("TS", "投诉", complaints)):
        for seq, received in enumerate(_received_days(period, count, kind), 1):
            case_id = f"{kind}{period.year}{period.month:02d}{seq:04d}"
            draw = rng("12315", "attrs", case_id)
            steps = (
                _complaint(case_id, received, revision)
                if kind == "TS"
                else _report(case_id, received)
            )
            rows.append(
                {
                    "period": str(period),
                    "region_code": REGION_CODE,
                    "case_id": case_id,
                    "case_type": case_type,
                    "matter_type": "商品" if draw.random() < 0.55 else "服务",
                    "handling_unit": draw.choice(codes["handling_units"]),
                    "received_date": received.isoformat(),
                    **_as_seen_on(steps, as_of),
                }
            )
    return sorted(rows, key=lambda row: row["case_id"])


# --- defects ----------------------------------------------------------------------------


def _days_before_received(field: str, days: int):
    def change(row: dict[str, Any]) -> None:
        row[field] = (date.fromisoformat(row["received_date"]) - timedelta(days=days)).isoformat()

    return change


def _impossible_date(row: dict[str, Any]) -> None:
    row["received_date"] = f"{row['period']}-32"


def _last_month(row: dict[str, Any]) -> None:
    row["received_date"] = (Period.parse(row["period"]).first_day - timedelta(days=1)).isoformat()


def _closed_complaint(row: dict[str, Any]) -> bool:
    return row["case_type"] == "投诉" and row["closed_date"] is not None


def _accepted_complaint(row: dict[str, Any]) -> bool:
    return row["case_type"] == "投诉" and row["accepted_date"] is not None


DEFECTS = (
    Defect(
        "closed_before_received",
        30,
        _days_before_received("closed_date", 2),
        where=_closed_complaint,
    ),
    Defect(
        "accepted_before_received",
        36,
        _days_before_received("accepted_date", 1),
        where=_accepted_complaint,
    ),
    Defect("bad_date", 9, _impossible_date),
    Defect("unknown_outcome", 12, common.set_field("outcome", UNKNOWN_OUTCOME)),
    Defect("unknown_type", 15, common.set_field("case_type", UNKNOWN_TYPE)),
    Defect("received_outside_period", 18, _last_month),
    Defect("duplicate_key", 21, mode="duplicate"),
)

SERVED = ServedFeed(
    name=FEED,
    unit=None,
    first_period=FIRST_PERIOD,
    streams=(
        ServedStream("cases", "/api/v1/complaints-12315/cases", "cursor", case_rows, DEFECTS),
    ),
)
