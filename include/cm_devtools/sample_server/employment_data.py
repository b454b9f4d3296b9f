"""Deterministic employment figures for 西区 (510403): job fairs and monthly figures.

Why generated: measures 1 (稳岗扩岗、招聘会、公益性岗位、以工代赈) and 6 (失业保险) need a
source a test can recompute. Seeds are stable strings (see :mod:`.common`). Every month is
published, January included.

Model:

* Job fairs: the yearly public employment calendar (春风行动 in February, 民营企业服务月
  in May, 高校毕业生 in July, 金秋招聘月 in September) plus a special fair some years
  (格里坪特色产业园区 2025, 攀盐高速施工专场 2026, 冬季返乡 2024): 4–5 fairs a year on a
  working Friday, each offering 150–500 jobs (≥ 800 a year, as the plan asks); attendees
  1.5–3 × the jobs, hires 8–20 % of the attendees. Most months have none.
* Monthly figures: 城镇新增就业 (~160 a month, spring and graduation peaks),
  公益性岗位安置 (placements in March, July and September), 以工代赈 jobs (construction
  season March–November, 27–45 a year), 失业保险金领取人数 (a stock of ~650–850) and the
  benefits paid (recipients × 90 % of the 2,100 元 minimum wage, in 万元). Year-to-date
  columns are the sums of the months since January.

Defects (``bad_rows``): job fairs are sparse, so each defect *appends* a changed copy of
the month's first fair with its own id (``hires_exceed_attendees``, ``date_outside_period``,
``unknown_mode``, ``negative_count``), and ``duplicate_key`` copies it. The monthly row
takes ``ytd_decrease`` (城镇新增就业 YTD below the previous month's; a warning only).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from cm_devtools.sample_server.common import REGION_CODE, money, rng
from cm_devtools.sample_server.served import Defect, ServedFeed, ServedStream
from consumption_monitor.common.periods import Period
from consumption_monitor.common.workdays import WorkdayCalendar, load_calendar

FEED = "employment_monthly"
UNIT = "万元"
FIRST_PERIOD = Period(2024, 1)
BASE_YEAR = 2024
UNKNOWN_MODE = "现场"
UI_BENEFIT_YUAN = 1890  # 90 % of Sichuan's first-band minimum wage (2,100 元/月)
_HRSS = "区人力资源社会保障局"

# (month, preferred day, name, mode, organiser, (min jobs, max jobs))
_EVERY_YEAR: tuple[tuple[int, int, str, str, str, tuple[int, int]], ...] = (
    (2, 20, "{y}年“春风行动”暨就业援助月现场招聘会", "线上+线下", _HRSS, (250, 420)),
    (5, 16, "{y}年民营企业服务月专场招聘会", "线上", _HRSS, (150, 300)),
    (7, 10, "{y}年高校毕业生就业服务专场招聘会", "线上+线下", f"{_HRSS}、团区委", (150, 280)),
    (9, 18, "{y}年“金秋招聘月”西区专场招聘会", "线下", _HRSS, (200, 380)),
)
_SPECIAL: dict[int, tuple[tuple[int, int, str, str, str, tuple[int, int]], ...]] = {
    2024: ((12, 6, "2024年冬季返乡人员专场招聘会", "线下", _HRSS, (150, 260)),),
    2025: (
        (
            4,
            18,
            "格里坪特色产业园区企业专场招聘会",
            "线下",
            f"{_HRSS}、格里坪镇人民政府",
            (180, 320),
        ),
    ),
    2026: ((3, 13, "攀盐高速施工专场招聘会", "线下", f"{_HRSS}、区发展改革局", (300, 500)),),
}


def _calendar() -> WorkdayCalendar:
    return load_calendar().with_lenience()


def _fair_day(year: int, month: int, preferred: int) -> date:
    """The first working Friday on or after the preferred day (fairs are held on Fridays)."""
    day = date(year, month, preferred)
    while day.weekday() != 4 or not _calendar().is_workday(day):
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def fairs_of_year(year: int) -> tuple[dict[str, Any], ...]:
    """The year's job fairs in date order, with ids ZPH-<year>-<nn>."""
    plans = sorted(
        (*_EVERY_YEAR, *_SPECIAL.get(year, ())), key=lambda p: _fair_day(year, p[0], p[1])
    )
    out = []
    for seq, (month, preferred, name, mode, organiser, (low, high)) in enumerate(plans, 1):
        draw = rng("employment", "fair", year, seq, name)
        jobs = draw.randint(low, high)
        attendees = round(jobs * draw.uniform(1.5, 3.0))
        out.append(
            {
                "event_id": f"ZPH-{year}-{seq:02d}",
                "event_date": _fair_day(year, month, preferred).isoformat(),
                "mode": mode,
                "organiser": organiser,
                "name": name.format(y=year),
                "jobs_offered": jobs,
                "attendees": attendees,
                "hires": round(attendees * draw.uniform(0.08, 0.20)),
            }
        )
    return tuple(out)


def fair_rows(period: Period, revision: int = 0) -> list[dict[str, Any]]:
    """The fairs held in the period, sorted by event id (often none)."""
    rows = []
    for fair in fairs_of_year(period.year):
        if fair["event_date"][:7] != str(period):
            continue
        row = {"period": str(period), "region_code": REGION_CODE, **fair}
        if revision > 0:  # a revision corrects the count of hires
            row["hires"] = max(
                0,
                row["hires"] + rng("employment", "rev", fair["event_id"], revision).randint(-5, 5),
            )
        rows.append(row)
    return rows


# --- monthly figures --------------------------------------------------------------------

_NEW_JOBS_INDEX = (0.65, 0.75, 1.25, 1.20, 1.05, 1.00, 1.15, 1.00, 1.05, 0.95, 0.95, 1.00)
_WELFARE = {3: (8, 16), 7: (6, 12), 9: (5, 10)}
_RELIEF_MONTHS = range(3, 12)


def _month_figures(month: Period, revision: int) -> dict[str, int]:
    """One month's flows, plus the insurance stock and benefits (hundredths of 万元)."""
    draw = rng("employment", "month", month, revision)
    trend = 1.02 ** (month.year - BASE_YEAR)
    new_jobs = round(160 * _NEW_JOBS_INDEX[month.month - 1] * trend * draw.uniform(0.9, 1.1))
    low, high = _WELFARE.get(month.month, (0, 3))
    relief = draw.randint(3, 5) if month.month in _RELIEF_MONTHS else 0
    recipients = round((720 + (90 if month.month in (2, 3) else 0)) * draw.uniform(0.92, 1.08))
    paid = round(recipients * UI_BENEFIT_YUAN * draw.uniform(0.97, 1.0) / 100)  # 元 -> 0.01万
    return {
        "urban_new_jobs": new_jobs,
        "public_welfare_placed": draw.randint(low, high),
        "work_relief_jobs": relief,
        "ui_recipients": recipients,
        "ui_benefits_paid": paid,
    }


FLOWS = ("urban_new_jobs", "public_welfare_placed", "work_relief_jobs")


def monthly_rows(period: Period, revision: int = 0) -> list[dict[str, Any]]:
    """The period's single row: month and year-to-date columns."""
    months = [Period(period.year, m) for m in range(1, period.month + 1)]
    figures = [_month_figures(m, revision if m == period else 0) for m in months]
    now = figures[-1]
    row: dict[str, Any] = {"period": str(period), "region_code": REGION_CODE}
    for name in FLOWS:
        row[f"{name}_month"] = now[name]
        row[f"{name}_ytd"] = sum(f[name] for f in figures)
    row["ui_recipients"] = now["ui_recipients"]
    row["ui_benefits_paid_month"] = money(now["ui_benefits_paid"])
    row["ui_benefits_paid_ytd"] = money(sum(f["ui_benefits_paid"] for f in figures))
    return [row]


# --- defects ----------------------------------------------------------------------------


def _copy_as(suffix: str, **changes: Any):
    def change(row: dict[str, Any]) -> None:
        row["event_id"] = f"{row['event_id']}-{suffix}"
        for key, value in changes.items():
            row[key] = value(row) if callable(value) else value

    return change


def _next_month_day(row: dict[str, Any]) -> str:
    return Period.parse(row["period"]).shift(1).first_day.isoformat()


def _ytd_decrease(row: dict[str, Any]) -> None:
    month, ytd = row["urban_new_jobs_month"], row["urban_new_jobs_ytd"]
    row["urban_new_jobs_ytd"] = month + (ytd - month) // 3


FAIR_DEFECTS = (
    Defect(
        "hires_exceed_attendees",
        0,
        _copy_as("X1", hires=lambda r: r["attendees"] + 15),
        mode="append",
    ),
    Defect("date_outside_period", 0, _copy_as("X2", event_date=_next_month_day), mode="append"),
    Defect("unknown_mode", 0, _copy_as("X3", mode=UNKNOWN_MODE), mode="append"),
    Defect(
        "negative_count",
        0,
        _copy_as("X4", jobs_offered=lambda r: -r["jobs_offered"]),
        mode="append",
    ),
    Defect("duplicate_key", 0, mode="duplicate"),
)
MONTHLY_DEFECTS = (Defect("ytd_decrease", 0, _ytd_decrease),)


def _fairs(period: Period, revision: int, _as_of: date) -> list[dict[str, Any]]:
    return fair_rows(period, revision)


def _monthly(period: Period, revision: int, _as_of: date) -> list[dict[str, Any]]:
    return monthly_rows(period, revision)


SERVED = ServedFeed(
    name=FEED,
    unit=UNIT,
    first_period=FIRST_PERIOD,
    streams=(
        ServedStream("job_fairs", "/api/v1/employment/job-fairs", "cursor", _fairs, FAIR_DEFECTS),
        ServedStream(
            "monthly_figures",
            "/api/v1/employment/monthly-figures",
            "page",
            _monthly,
            MONTHLY_DEFECTS,
        ),
    ),
)
