"""Deterministic monthly online retail (网络零售) figures for 西区 (510403).

Why generated: measures 15 (数智消费、直播带货) and 19 (网络零售统计监测) need a source whose
every figure a test can recompute, in any process. Seeds are stable strings (see
:mod:`.common`). Amounts are held as integer hundredths of 万元, so sums are exact.

Model:

* ~22 local enterprises selling on 抖音、快手、美团、焕新生活APP、京东、淘宝: one row per
  enterprise, platform and period. A month is base × trend (6–22 %/yr) × seasonality
  (Spring Festival, 618, 双11, December; grapes and fruit in summer) × noise. 焕新生活APP
  rows start in 2025-03, when the platform came to 攀枝花.
* ``live_sales`` is a share of ``online_sales`` (zero in a month without live sessions);
  ``orders`` = sales ÷ the row's average order value (元).
* District 网上零售额 = the monitored enterprises ÷ their coverage (~55 %); 实物商品网上零售额
  ≈ 80 % of it. As NBS publishes, both come year-to-date only, with a published
  (comparable-basis) YTD growth rate, and January only inside February ("1-2月"). The
  enterprise rows of the 1-2月 period cover January and February together.
* Revision N > 0 of a period moves its months (January too, for February) by ±0.1–0.5 %.

Defects (``bad_rows``): on the district stream ``ytd_decrease`` halves both YTD figures
(row 0; caught by the YTD monotonicity warning). On the platform stream, at fixed positions
of the sorted rows: ``negative_amount`` 2, ``live_exceeds_online`` 5, ``fractional_count`` 8,
``unknown_platform`` 11, ``bad_uscc_check`` 14 (warning only), ``wrong_period`` 17,
``duplicate_key`` 20 (an exact copy inserted after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from cm_devtools.sample_server import common
from cm_devtools.sample_server.common import (
    REGION_CODE,
    REGION_NAME,
    comparable_rate,
    make_uscc,
    money,
    rng,
)
from cm_devtools.sample_server.served import Defect, ServedFeed, ServedStream
from consumption_monitor.common.periods import Period

FEED = "ecommerce_monthly"
UNIT = "万元"
FIRST_PERIOD = Period(2024, 2)
BASE_YEAR = 2023
UNKNOWN_PLATFORM = "拼多多"  # a real platform, but not on the monitored list
FRACTIONAL_SESSIONS = 12.5

# name -> seasonality profile, first active period, {platform: (2023 monthly sales 万元,
# live-streaming share of sales, average order value 元, live sessions per month)}
# fmt: off
_ROSTER: tuple[tuple[str, str, str | None, dict[str, tuple[float, float, float, int]]], ...] = (
    ("攀枝花市西区清香坪百货超市有限公司", "goods", None,
     {"美团": (18, 0.0, 65, 0), "京东": (6, 0.0, 80, 0)}),
    ("攀枝花市西区玉泉生鲜超市有限公司", "food", None, {"美团": (10, 0.0, 55, 0)}),
    ("攀枝花市西区好邻居便利店有限公司", "goods", None, {"美团": (4, 0.0, 40, 0)}),
    ("攀枝花市西区福源家电商贸有限公司", "goods", None,
     {"抖音": (25, 0.70, 1800, 20), "京东": (30, 0.0, 2200, 0)}),
    ("攀枝花市西区达通数码通讯器材有限公司", "goods", None,
     {"抖音": (15, 0.75, 2600, 16), "淘宝": (8, 0.20, 1500, 4)}),
    ("攀枝花市西区恒通汽车销售服务有限公司", "auto", None, {"抖音": (12, 0.80, 5000, 12)}),
    ("攀枝花市西区鑫达汽车销售服务有限公司", "auto", None, {"抖音": (8, 0.70, 3000, 10)}),
    ("攀枝花市西区渝香火锅餐饮有限公司", "catering", None,
     {"美团": (14, 0.0, 95, 0), "抖音": (10, 0.35, 120, 8)}),
    ("攀枝花市西区金沙江鱼庄餐饮有限公司", "catering", None,
     {"美团": (6, 0.0, 110, 0), "抖音": (5, 0.30, 130, 6)}),
    ("攀枝花市西区河门口鲜锅兔餐饮有限公司", "catering", None,
     {"美团": (5, 0.0, 85, 0), "抖音": (4, 0.40, 100, 8)}),
    ("攀枝花市西区阳光大酒店有限公司", "catering", None,
     {"美团": (5, 0.0, 320, 0), "抖音": (3, 0.30, 280, 4)}),
    ("攀枝花市西区啍啍鸡食品有限公司", "food", None,
     {"抖音": (8, 0.80, 160, 15), "快手": (5, 0.85, 150, 12)}),
    ("攀枝花市西区啍啍鸡食品有限公司", "food", "2025-03", {"焕新生活APP": (3, 0.20, 120, 2)}),
    ("攀枝花市西区苏铁山药农业开发有限公司", "food", None,
     {"抖音": (6, 0.70, 90, 10), "淘宝": (4, 0.0, 85, 0)}),
    ("攀枝花市西区苏铁山药农业开发有限公司", "food", "2025-03", {"焕新生活APP": (3, 0.10, 80, 1)}),
    ("攀枝花市西区京亚葡萄种植有限公司", "fruit", None,
     {"抖音": (7, 0.75, 110, 12), "快手": (3, 0.80, 100, 8), "京东": (4, 0.0, 130, 0)}),
    ("攀枝花市西区格里坪花椒商贸有限公司", "food", None,
     {"淘宝": (3, 0.0, 70, 0), "京东": (3, 0.0, 75, 0), "抖音": (2, 0.60, 60, 6)}),
    ("攀枝花市西区金沙服饰商贸有限公司", "goods", None,
     {"抖音": (9, 0.90, 180, 22), "快手": (6, 0.90, 160, 18)}),
    ("攀枝花市西区丽人化妆品商贸有限公司", "goods", None,
     {"抖音": (7, 0.85, 150, 18), "淘宝": (4, 0.10, 130, 2)}),
    ("攀枝花市西区宏盛家居建材有限公司", "goods", None,
     {"京东": (8, 0.0, 900, 0), "淘宝": (5, 0.0, 700, 0), "抖音": (4, 0.50, 800, 6)}),
    ("攀枝花市西区康宁大药房有限公司", "goods", None,
     {"美团": (9, 0.0, 75, 0), "京东": (3, 0.0, 90, 0)}),
    ("攀枝花市西区顺发酒类批发有限公司", "food", None,
     {"京东": (6, 0.0, 300, 0), "淘宝": (4, 0.0, 280, 0), "抖音": (3, 0.60, 260, 6)}),
    ("攀枝花市西区动力体育用品有限公司", "goods", None,
     {"淘宝": (3, 0.0, 220, 0), "抖音": (2, 0.70, 200, 6)}),
    ("攀枝花市西区三线文创有限公司", "goods", "2025-03",
     {"焕新生活APP": (0.3, 0.30, 60, 2), "抖音": (0.4, 0.60, 70, 4)}),
)
# fmt: on

_SPRING_FESTIVAL_MONTH = {2023: 1, 2024: 2, 2025: 1, 2026: 2, 2027: 2, 2028: 1, 2029: 2}
_PROFILE_BOOST: dict[str, dict[int, float]] = {
    "goods": {6: 0.15, 11: 0.30, 12: 0.10},
    "food": {6: 0.05, 11: 0.15, 12: 0.10},
    "catering": {5: 0.05, 7: 0.05, 8: 0.05, 10: 0.10},
    "auto": {3: 0.05, 12: 0.20},
    "fruit": {1: -0.5, 2: -0.5, 3: -0.4, 4: -0.3, 5: 0.1, 6: 0.9, 7: 1.1, 8: 0.8, 9: 0.3, 12: -0.3},
}
_FESTIVAL_BOOST = {"goods": 0.05, "food": 0.25, "catering": 0.20, "auto": -0.10, "fruit": 0.0}


@dataclass(frozen=True)
class Listing:
    """One enterprise on one platform."""

    uscc: str
    name: str
    platform: str
    profile: str
    base_month: float
    live_share: float
    order_value: float
    sessions: int
    growth: float
    active_from: Period | None

    def active(self, month: Period) -> bool:
        return self.active_from is None or month >= self.active_from


@lru_cache(maxsize=1)
def listings() -> tuple[Listing, ...]:
    """Every monitored enterprise-platform pair, sorted by (uscc, platform)."""
    out = []
    for name, profile, start, platforms in _ROSTER:
        for platform, (base, share, order_value, sessions) in platforms.items():
            out.append(
                Listing(
                    uscc=make_uscc(name),
                    name=name,
                    platform=platform,
                    profile=profile,
                    base_month=float(base),
                    live_share=share,
                    order_value=float(order_value),
                    sessions=sessions,
                    growth=rng("ecommerce", "growth", name, platform).uniform(0.06, 0.22),
                    active_from=Period.parse(start) if start else None,
                )
            )
    return tuple(sorted(out, key=lambda x: (x.uscc, x.platform)))


def _factor(profile: str, month: Period) -> float:
    factor = 1.0 + _PROFILE_BOOST[profile].get(month.month, 0.0)
    if month.month == _SPRING_FESTIVAL_MONTH.get(month.year, 2):
        factor += _FESTIVAL_BOOST[profile]
    return factor


def _revision_for(month: Period, period: Period, revision: int) -> int:
    """A revision of February restates January too (they are published together)."""
    same = month == period or (period.month == 2 and month == Period(period.year, 1))
    return revision if same else 0


@lru_cache(maxsize=100_000)
def _month(listing: Listing, month: Period, revision: int) -> tuple[int, int, int, int]:
    """(online sales, live sessions, live sales, orders) of one listing-month; sales in
    hundredths of 万元."""
    key = (listing.uscc, listing.platform, month)
    draw = rng("ecommerce", "month", *key)
    months_since_base = (month.year - BASE_YEAR) * 12 + (month.month - 1)
    trend = (1 + listing.growth) ** (months_since_base / 12)
    noise = min(max(draw.gauss(0, 0.06), -0.15), 0.15)
    value = listing.base_month * trend * _factor(listing.profile, month) * (1 + noise)
    if revision > 0:
        change = rng("ecommerce", "revision", *key, revision)
        value *= 1 + change.choice((-1, 1)) * change.uniform(0.001, 0.005)
    sales = max(round(value * 100), 1)
    sessions = round(listing.sessions * draw.uniform(0.7, 1.3)) if listing.sessions else 0
    live = min(sales, round(sales * listing.live_share * draw.uniform(0.85, 1.1)))
    live = live if sessions else 0
    orders = max(1, round(sales * 100 / (listing.order_value * draw.uniform(0.9, 1.1))))
    return sales, sessions, live, orders


def _months(period: Period) -> list[Period]:
    """The months a period's enterprise rows cover: January and February for 1-2月."""
    return [Period(period.year, 1), period] if period.month == 2 else [period]


def platform_rows(period: Period, revision: int = 0) -> list[dict[str, Any]]:
    """One row per listing active in the period, sorted by (uscc, platform)."""
    rows = []
    for listing in listings():
        months = [m for m in _months(period) if listing.active(m)]
        if not months:
            continue
        figures = [_month(listing, m, _revision_for(m, period, revision)) for m in months]
        sales, sessions, live, orders = (sum(f[i] for f in figures) for i in range(4))
        rows.append(
            {
                "period": str(period),
                "period_label": period.label,
                "region_code": REGION_CODE,
                "uscc": listing.uscc,
                "enterprise_name": listing.name,
                "platform": listing.platform,
                "online_sales": money(sales),
                "live_sessions": sessions,
                "live_sales": money(live),
                "orders": orders,
                "unit": UNIT,
            }
        )
    return rows


def _district_month(month: Period, revision: int) -> tuple[int, int]:
    """(网上零售额, 实物商品网上零售额) of one month, in hundredths of 万元."""
    monitored = sum(_month(x, month, revision)[0] for x in listings() if x.active(month))
    draw = rng("ecommerce", "district", month)
    total = round(monitored / (0.55 + draw.uniform(-0.02, 0.02)))
    return total, round(total * (0.80 + draw.uniform(-0.02, 0.02)))


def _ytd(period: Period, revision: int) -> tuple[int, int]:
    months = [Period(period.year, m) for m in range(1, period.month + 1)]
    figures = [_district_month(m, _revision_for(m, period, revision)) for m in months]
    return sum(f[0] for f in figures), sum(f[1] for f in figures)


def district_rows(period: Period, revision: int = 0) -> list[dict[str, Any]]:
    """The district's year-to-date online retail figures (one row)."""
    (total, physical), (total_before, physical_before) = (
        _ytd(period, revision),
        _ytd(period.shift(-12), 0),
    )
    return [
        {
            "period": str(period),
            "period_label": period.label,
            "region_code": REGION_CODE,
            "region_name": REGION_NAME,
            "online_retail_ytd": money(total),
            "online_retail_yoy_ytd_pct": comparable_rate(
                total, total_before, "ecommerce", "online", period
            ),
            "physical_online_retail_ytd": money(physical),
            "physical_online_retail_yoy_ytd_pct": comparable_rate(
                physical, physical_before, "ecommerce", "physical", period
            ),
            "unit": UNIT,
        }
    ]


# --- defects -------------------------------------------------------------------------


def _halve_ytd(row: dict[str, Any]) -> None:
    for key in ("online_retail_ytd", "physical_online_retail_ytd"):
        row[key] = round(row[key] / 2, 2)


def _negative(row: dict[str, Any]) -> None:
    row["online_sales"] = -abs(row["online_sales"])
    row["live_sales"] = 0.0


def _live_exceeds(row: dict[str, Any]) -> None:
    row["live_sales"] = round(row["online_sales"] * 1.2 + 0.01, 2)


DISTRICT_DEFECTS = (Defect("ytd_decrease", 0, _halve_ytd),)
PLATFORM_DEFECTS = (
    Defect("negative_amount", 2, _negative),
    Defect("live_exceeds_online", 5, _live_exceeds),
    Defect("fractional_count", 8, common.set_field("live_sessions", FRACTIONAL_SESSIONS)),
    Defect("unknown_platform", 11, common.set_field("platform", UNKNOWN_PLATFORM)),
    Defect("bad_uscc_check", 14, common.bad_check),
    Defect("wrong_period", 17, common.previous_period),
    Defect("duplicate_key", 20, mode="duplicate"),
)


def _district(period: Period, revision: int, _as_of: date) -> list[dict[str, Any]]:
    return district_rows(period, revision)


def _platforms(period: Period, revision: int, _as_of: date) -> list[dict[str, Any]]:
    return platform_rows(period, revision)


SERVED = ServedFeed(
    name=FEED,
    unit=UNIT,
    first_period=FIRST_PERIOD,
    january_alone=False,
    streams=(
        ServedStream(
            "district_online",
            "/api/v1/ecommerce/district-online",
            "page",
            _district,
            DISTRICT_DEFECTS,
        ),
        ServedStream(
            "platform_sales",
            "/api/v1/ecommerce/platform-sales",
            "cursor",
            _platforms,
            PLATFORM_DEFECTS,
        ),
    ),
)
