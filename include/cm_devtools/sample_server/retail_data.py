"""Deterministic, realistic monthly retail statistics for 西区 (510403).

Why generated rather than recorded: the pipeline needs a source whose every figure can be
recomputed in a test, in any process, on any day. Every random draw comes from
``random.Random(<stable string>)`` (never ``hash()``), keyed by stream, unit, category and
period (and revision), so two servers in two processes serve identical bytes.

Model (amounts are held as integer hundredths of 万元, so sums are exact):

* ~40 above-quota units (限额以上) in industries 51/52/61/62. Each unit-category month is
  base × trend (3–8 %/yr) × seasonality (Spring Festival, 618, 双11, December) × noise.
  2023 is generated as the base year so that 2024 has year-on-year rates.
* District 限额以上单位消费品零售额 = the exact sum of the unit rows (month and YTD).
  社会消费品零售总额 = above-quota + a smooth below-quota (限下) series, so the
  above-quota share stays near 50 % (about 46–54 %).
* YTD = the sum of the months since January. January is generated but published only
  inside February ("1-2月"), whose month columns are null.
* Published YoY rates are on a comparable basis: the naive rate plus a deterministic
  ±0.2–1.5 point adjustment, so they differ from a recomputation (see domain-facts).
* Revision N > 0 of a period moves each of its unit months (January too, for February)
  by ±0.1–0.5 %; the district rows follow, so sums stay consistent. Other periods keep
  revision 0, so a revised period's YTD need not chain with its neighbours'.

Defect injection (:func:`inject_defects`, above-quota stream only) edits the full sorted
row list of a period before pagination, at fixed positions, so ``total`` always equals the
rows served:

==================  ========  ==========================================================
defect              row index change
==================  ========  ==========================================================
negative_amount     2         amount made negative (value_month; value_ytd in February)
bad_uscc_check      5         18th USCC character replaced by the next alphabet character
wrong_region        8         region_code "510402" (东区)
non_numeric         11        amount replaced by the string "12,3x4"
wrong_period        14        period set to the previous month
wrong_unit          17        unit "元", amounts converted to 元 (×10000)
duplicate_key       20        an exact copy of row 20 inserted after it (one extra row)
==================  ========  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from cm_devtools.sample_server import common
from cm_devtools.sample_server.common import rng as _rng
from cm_devtools.sample_server.served import Defect, ServedFeed, ServedStream, inject
from consumption_monitor.common.periods import Period, last_full_month, published_periods

FEED = "retail_monthly"
UNIT = "万元"
FIRST_PERIOD = Period(2024, 2)
BASE_YEAR = 2023
NON_NUMERIC_VALUE = "12,3x4"
WRONG_REGION = "510402"

DEFECT_POSITIONS: dict[str, int] = {
    "negative_amount": 2,
    "bad_uscc_check": 5,
    "wrong_region": 8,
    "non_numeric": 11,
    "wrong_period": 14,
    "wrong_unit": 17,
    "duplicate_key": 20,
}


@lru_cache(maxsize=1)
def codes() -> dict[str, Any]:
    """The shared code lists (region, industries, categories, indicators)."""
    text = resources.files("consumption_monitor") / "reference" / "retail_codes.yaml"
    return yaml.safe_load(text.read_text(encoding="utf-8"))


# --- the roster of above-quota units -------------------------------------------------

# (name, industry, {category: share of the unit's sales}, 2023 monthly sales in 万元,
#  first active period, last active period). Units leave only after a December, so a
#  unit present in a period is present in every earlier month of that year.
# fmt: off
_ROSTER: tuple[tuple[str, str, dict[str, float], float, str | None, str | None], ...] = (
    ("攀枝花市西区清香坪百货超市有限公司", "52",
     {"G01": 0.45, "G02": 0.15, "G03": 0.10, "G04": 0.10, "G07": 0.20}, 900, None, None),
    ("攀枝花市西区玉泉生鲜超市有限公司", "52", {"G01": 0.70, "G02": 0.15, "G07": 0.15},
     450, None, None),
    ("攀枝花市西区惠民连锁超市有限公司", "52",
     {"G01": 0.50, "G02": 0.20, "G03": 0.15, "G07": 0.15}, 600, None, None),
    ("攀枝花市西区河门口便民超市有限公司", "52", {"G01": 0.60, "G02": 0.20, "G07": 0.20},
     180, None, None),
    ("攀枝花市西区好邻居便利店有限公司", "52",
     {"G01": 0.40, "G02": 0.30, "G03": 0.20, "G07": 0.10}, 130, None, None),
    ("攀枝花市西区玉泉商场有限公司", "52",
     {"G04": 0.40, "G05": 0.15, "G06": 0.15, "G07": 0.15, "G08": 0.15}, 500, None, None),
    ("攀枝花市西区格里坪石油销售有限公司", "52", {"G13": 1.0}, 900, None, None),
    ("攀枝花市西区清香坪加油站有限公司", "52", {"G13": 0.96, "G01": 0.04}, 700, None, None),
    ("攀枝花市西区金沙石化能源有限公司", "52", {"G13": 1.0}, 500, None, None),
    ("攀枝花市西区恒通汽车销售服务有限公司", "52", {"G14": 1.0}, 1400, None, None),
    ("攀枝花市西区鑫达汽车销售服务有限公司", "52", {"G14": 0.95, "G17": 0.05},
     1100, None, None),
    ("攀枝花市西区绿驰新能源汽车销售服务有限公司", "52", {"G14": 1.0}, 450, "2024-07", None),
    ("攀枝花市西区众和汽车销售服务有限公司", "52", {"G14": 1.0}, 500, None, "2024-12"),
    ("攀枝花市西区骏达摩托车销售有限公司", "52", {"G14": 0.80, "G17": 0.20}, 110, None, None),
    ("攀枝花市西区福源家电商贸有限公司", "52", {"G08": 0.80, "G12": 0.20}, 500, None, None),
    ("攀枝花市西区达通数码通讯器材有限公司", "52", {"G12": 0.85, "G08": 0.15},
     300, None, None),
    ("攀枝花市西区金沙通讯器材有限公司", "52", {"G12": 1.0}, 200, None, None),
    ("攀枝花市西区康宁大药房有限公司", "52", {"G09": 1.0}, 220, None, None),
    ("攀枝花市西区百姓大药房连锁有限公司", "52", {"G09": 0.90, "G07": 0.10}, 260, None, None),
    ("攀枝花市西区金沙服饰商贸有限公司", "52", {"G04": 1.0}, 160, None, None),
    ("攀枝花市西区金玉珠宝有限公司", "52", {"G06": 1.0}, 200, None, None),
    ("攀枝花市西区宏盛家居建材有限公司", "52", {"G11": 0.50, "G15": 0.50}, 250, None, None),
    ("攀枝花市西区文华文化用品有限公司", "52", {"G10": 0.80, "G16": 0.20}, 90, None, None),
    ("攀枝花市西区动力体育用品有限公司", "52", {"G16": 0.70, "G04": 0.30}, 70, None, None),
    ("攀枝花市西区丽人化妆品商贸有限公司", "52", {"G05": 0.80, "G07": 0.20}, 80, None, None),
    ("攀枝花市西区醇香烟酒商行有限公司", "52", {"G03": 0.85, "G02": 0.15}, 150, None, None),
    ("攀枝花市西区路北农副产品商贸有限公司", "52", {"G01": 1.0}, 120, None, None),
    ("攀枝花市西区格里坪农资商贸有限公司", "52", {"G17": 0.60, "G15": 0.40}, 120, None, None),
    ("攀枝花市西区明视眼镜有限公司", "52", {"G17": 1.0}, 60, None, None),
    ("攀枝花市西区川西粮油批发有限公司", "51", {"G01": 0.90, "G02": 0.10}, 300, None, None),
    ("攀枝花市西区华安医药有限公司", "51", {"G09": 1.0}, 200, None, None),
    ("攀枝花市西区通达五金建材有限公司", "51", {"G15": 0.80, "G07": 0.20}, 180, None, None),
    ("攀枝花市西区顺发酒类批发有限公司", "51", {"G03": 0.70, "G02": 0.30}, 250, None, None),
    ("攀枝花市西区兴隆日化批发有限公司", "51", {"G07": 0.70, "G05": 0.30}, 150, None, None),
    ("攀枝花市西区宏远能源有限公司", "51", {"G13": 1.0}, 400, None, None),
    ("攀枝花市西区金沙汽配商贸有限公司", "51", {"G14": 0.60, "G17": 0.40}, 150, None, None),
    ("攀枝花市西区清香坪餐饮管理有限公司", "62", {"C01": 1.0}, 80, None, None),
    ("攀枝花市西区渝香火锅餐饮有限公司", "62", {"C01": 1.0}, 70, None, None),
    ("攀枝花市西区河门口餐饮服务有限公司", "62", {"C01": 1.0}, 45, None, None),
    ("攀枝花市西区金沙江鱼庄餐饮有限公司", "62", {"C01": 1.0}, 55, None, None),
    ("攀枝花市西区玉泉团餐配送有限公司", "62", {"C01": 1.0}, 120, None, None),
    ("攀枝花市西区格里坪烧烤餐饮有限公司", "62", {"C01": 1.0}, 35, "2025-01", None),
    ("攀枝花市西区路南酒楼有限公司", "62", {"C01": 1.0}, 90, None, None),
    ("攀枝花市西区西城酒店有限公司", "61", {"C01": 1.0}, 60, None, None),
    ("攀枝花市西区苏铁宾馆有限公司", "61", {"C01": 1.0}, 40, None, None),
    ("攀枝花市西区阳光大酒店有限公司", "61", {"C01": 1.0}, 75, None, None),
    ("攀枝花市西区清香坪商务酒店有限公司", "61", {"C01": 1.0}, 30, None, None),
)
# fmt: on


@dataclass(frozen=True)
class Enterprise:
    uscc: str
    name: str
    industry_code: str
    categories: tuple[tuple[str, float], ...]
    base_month: float
    growth: float
    active_from: Period | None
    active_until: Period | None

    def active(self, period: Period) -> bool:
        if self.active_from is not None and period < self.active_from:
            return False
        return self.active_until is None or period <= self.active_until


def make_uscc(name: str) -> str:
    """A valid USCC for a 西区 enterprise: 9 (工商) 1 (企业) 510403, org code, check."""
    return common.make_uscc(name, codes()["region"]["code"])


@lru_cache(maxsize=1)
def roster() -> tuple[Enterprise, ...]:
    """The above-quota units, sorted by USCC."""
    units = []
    for name, industry, categories, base, start, until in _ROSTER:
        units.append(
            Enterprise(
                uscc=make_uscc(name),
                name=name,
                industry_code=industry,
                categories=tuple(sorted(categories.items())),
                base_month=float(base),
                growth=_rng("growth", name).uniform(0.03, 0.08),
                active_from=Period.parse(start) if start else None,
                active_until=Period.parse(until) if until else None,
            )
        )
    assert len({unit.uscc for unit in units}) == len(units), "USCC collision"
    assert all(u.active_until is None or u.active_until.month == 12 for u in units)
    return tuple(sorted(units, key=lambda unit: unit.uscc))


# --- seasonality ---------------------------------------------------------------------

_MONTH_INDEX = (1.00, 0.96, 0.95, 0.94, 1.00, 1.00, 0.96, 0.97, 1.00, 1.05, 1.06, 1.12)
_SPRING_FESTIVAL_MONTH = {2023: 1, 2024: 2, 2025: 1, 2026: 2, 2027: 2, 2028: 1, 2029: 2}
# fmt: off
_SPRING_FESTIVAL_BOOST = {
    "G01": 0.20, "G02": 0.18, "G03": 0.22, "G04": 0.12, "G06": 0.15, "C01": 0.22,
    "G13": 0.03, "G14": -0.12,
}
_CATEGORY_MONTH_BOOST = {  # 618, 双11, new phones, car-buying December, golden weeks
    ("G08", 6): 0.10, ("G08", 11): 0.18, ("G12", 6): 0.10, ("G12", 9): 0.08,
    ("G12", 11): 0.15, ("G05", 11): 0.12, ("G11", 11): 0.08, ("G14", 12): 0.15,
    ("G14", 3): 0.05, ("G15", 3): 0.06, ("G15", 9): 0.05, ("G04", 4): 0.05,
    ("G04", 10): 0.06, ("C01", 5): 0.05, ("C01", 10): 0.10,
}
# fmt: on


def seasonal_factor(category: str, year: int, month: int) -> float:
    """Month effect for a category; fuel sales are damped, the festival month moves."""
    factor = _MONTH_INDEX[month - 1]
    if category == "G13":
        factor = 1 + (factor - 1) * 0.3
    if month == _SPRING_FESTIVAL_MONTH.get(year, 2):
        factor += _SPRING_FESTIVAL_BOOST.get(category, 0.05)
    return factor + _CATEGORY_MONTH_BOOST.get((category, month), 0.0)


# --- unit-level figures (hundredths of 万元) ------------------------------------------


@lru_cache(maxsize=1)
def _by_uscc() -> dict[str, Enterprise]:
    return {unit.uscc: unit for unit in roster()}


@lru_cache(maxsize=200_000)
def _unit_month(uscc: str, category: str, period: str, revision: int) -> int:
    """One unit-category month, in hundredths of 万元."""
    unit = _by_uscc()[uscc]
    share = dict(unit.categories)[category]
    p = Period.parse(period)
    months_since_base = (p.year - BASE_YEAR) * 12 + (p.month - 1)
    trend = (1 + unit.growth) ** (months_since_base / 12)
    noise = min(max(_rng("above_quota", uscc, category, period).gauss(0, 0.03), -0.08), 0.08)
    value = unit.base_month * share * trend * seasonal_factor(category, p.year, p.month)
    value *= 1 + noise
    if revision > 0:
        draw = _rng("above_quota", uscc, category, period, "revision", revision)
        value *= 1 + draw.choice((-1, 1)) * draw.uniform(0.001, 0.005)
    return round(value * 100)


def _months_to(period: Period) -> list[Period]:
    """January .. ``period`` of the same year."""
    return [Period(period.year, month) for month in range(1, period.month + 1)]


def _revision_for(month: Period, period: Period, revision: int) -> int:
    """A revision of February restates January too (they are published together)."""
    same = month == period or (period.month == 2 and month == Period(period.year, 1))
    return revision if same else 0


def _unit_rows_cents(period: Period, revision: int) -> list[tuple[Enterprise, str, dict]]:
    """Per unit-category: cents by month (Jan..period) for units active in ``period``."""
    out = []
    for unit in roster():
        if not unit.active(period):
            continue
        for category, _share in unit.categories:
            months = {
                month: _unit_month(
                    unit.uscc, category, str(month), _revision_for(month, period, revision)
                )
                for month in _months_to(period)
                if unit.active(month)
            }
            out.append((unit, category, months))
    return out


_money = common.money


def above_quota_rows(period: Period, revision: int = 0) -> list[dict[str, Any]]:
    """All unit-category rows of a published period, sorted by (uscc, category_code)."""
    ref = codes()
    rows = []
    for unit, category, months in _unit_rows_cents(period, revision):
        month_cents = None if period.month == 2 else months[period]
        rows.append(
            {
                "period": str(period),
                "region_code": ref["region"]["code"],
                "uscc": unit.uscc,
                "enterprise_name": unit.name,
                "industry_code": unit.industry_code,
                "industry_name": ref["industries"][unit.industry_code],
                "category_code": category,
                "category_name": ref["categories"][category],
                "value_month": _money(month_cents),
                "value_ytd": _money(sum(months.values())),
                "unit": UNIT,
            }
        )
    rows.sort(key=lambda row: (row["uscc"], row["category_code"]))
    return rows


# --- district figures ----------------------------------------------------------------

BELOW_QUOTA_BASE = 13_600.0  # 万元 per month in 2023: sampled small shops and stalls
BELOW_QUOTA_GROWTH = 0.045


def _below_quota_month(month: Period) -> int:
    """Below-quota (限下) sales of a month, in hundredths of 万元: smooth, festival-led."""
    months_since_base = (month.year - BASE_YEAR) * 12 + (month.month - 1)
    trend = (1 + BELOW_QUOTA_GROWTH) ** (months_since_base / 12)
    factor = _MONTH_INDEX[month.month - 1]
    if month.month == _SPRING_FESTIVAL_MONTH.get(month.year, 2):
        factor += 0.12
    noise = min(max(_rng("district", "below_quota", month).gauss(0, 0.015), -0.04), 0.04)
    return round(BELOW_QUOTA_BASE * trend * factor * (1 + noise) * 100)


def _district_months(period: Period, revision: int) -> dict[str, dict[Period, int]]:
    """Above-quota and total sales by month (Jan..period), in hundredths of 万元."""
    above: dict[Period, int] = {month: 0 for month in _months_to(period)}
    for _unit, _category, months in _unit_rows_cents(period, revision):
        for month, cents in months.items():
            above[month] += cents
    total = {month: cents + _below_quota_month(month) for month, cents in above.items()}
    return {"retail_above_quota": above, "retail_total": total}


def _comparable_rate(current: int, prior: int, *key: object) -> float:
    """Published (comparable-basis) growth: naive growth plus a restatement effect."""
    naive = (current / prior - 1) * 100
    draw = _rng("district", "yoy", *key)
    return round(naive + draw.choice((-1, 1)) * draw.uniform(0.2, 1.5), 1)


def district_rows(period: Period, revision: int = 0) -> list[dict[str, Any]]:
    """One row per indicator; February carries only the 1-2月 cumulative columns."""
    ref = codes()
    current = _district_months(period, revision)
    prior = _district_months(period.shift(-12), 0)
    rows = []
    for indicator, name in ref["indicators"].items():
        months, before = current[indicator], prior[indicator]
        ytd, ytd_before = sum(months.values()), sum(before.values())
        is_feb = period.month == 2
        rows.append(
            {
                "period": str(period),
                "period_label": period.label,
                "region_code": ref["region"]["code"],
                "region_name": ref["region"]["name"],
                "indicator_code": indicator,
                "indicator_name": name,
                "value_month": None if is_feb else _money(months[period]),
                "value_ytd": _money(ytd),
                "yoy_month_pct": None
                if is_feb
                else _comparable_rate(
                    months[period], before[period.shift(-12)], indicator, "month", period
                ),
                "yoy_ytd_pct": _comparable_rate(ytd, ytd_before, indicator, "ytd", period),
                "unit": UNIT,
            }
        )
    return rows


# --- publication calendar ------------------------------------------------------------


def available_periods(as_of: date | None = None) -> list[Period]:
    """Published periods: 2024-02 .. the last full month before ``as_of``, no Januaries."""
    last = last_full_month(as_of)
    return published_periods(FIRST_PERIOD, last) if last >= FIRST_PERIOD else []


# --- defect injection ----------------------------------------------------------------


def _amount_field(row: dict[str, Any]) -> str:
    return "value_month" if row.get("value_month") is not None else "value_ytd"


def _negative(row: dict[str, Any]) -> None:
    row[_amount_field(row)] = -abs(row[_amount_field(row)])


def _non_numeric(row: dict[str, Any]) -> None:
    row[_amount_field(row)] = NON_NUMERIC_VALUE


def _in_yuan(row: dict[str, Any]) -> None:
    row["unit"] = "元"
    for key in ("value_month", "value_ytd"):
        if row[key] is not None:
            row[key] = round(row[key] * 10000, 2)


_P = DEFECT_POSITIONS
DEFECTS: tuple[Defect, ...] = (
    Defect("negative_amount", _P["negative_amount"], _negative),
    Defect("bad_uscc_check", _P["bad_uscc_check"], common.bad_check),
    Defect("wrong_region", _P["wrong_region"], common.set_field("region_code", WRONG_REGION)),
    Defect("non_numeric", _P["non_numeric"], _non_numeric),
    Defect("duplicate_key", _P["duplicate_key"], mode="duplicate"),
    Defect("wrong_period", _P["wrong_period"], common.previous_period),
    Defect("wrong_unit", _P["wrong_unit"], _in_yuan),
)


def inject_defects(rows: list[dict[str, Any]], which: list[str]) -> list[dict[str, Any]]:
    """A copy of ``rows`` with the named defects at the positions in ``DEFECT_POSITIONS``."""
    return inject(rows, DEFECTS, which)


SERVED = ServedFeed(
    name=FEED,
    unit=UNIT,
    first_period=FIRST_PERIOD,
    january_alone=False,
    streams=(
        ServedStream(
            "district_totals",
            "/api/v1/retail/district-totals",
            "page",
            lambda period, revision, _as_of: district_rows(period, revision),
        ),
        ServedStream(
            "above_quota",
            "/api/v1/retail/above-quota",
            "cursor",
            lambda period, revision, _as_of: above_quota_rows(period, revision),
            DEFECTS,
        ),
    ),
)
