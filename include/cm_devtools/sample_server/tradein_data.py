"""Deterministic trade-in (以旧换新) subsidy transactions for 西区 (510403), at any volume.

Why windowed: a province exports tens of millions of transactions a month. Rows are
generated for the cursor window asked for, never as a whole list: row ``i`` of a period is
built from a generator seeded by (period, block of 1,000 rows), so any page is
recomputable in any process, with any page size, and memory does not grow with the volume.

Model, per month: ``CM_TRADEIN_ROWS_PER_MONTH`` rows when set (exactly; up to 10M and
more), else ~1,600–2,400 (a district; fewer before the programme widened in August 2024).
Categories, rates, caps and price limits come from the policy year's rules file
(``reference/tradein_rules_<year>.yaml``): 家电 ~60 % (grade 1 or 2), 数码 ~25 % (not in
2024), 家装厨卫 ~10 %, 汽车 ~5 %. The subsidy is the rule's maximum for most rows, a
little less for some; fixed-amount categories (2025 scrappage renewals) always pay the
amount, and a sale of a category with its own start date (digital products from
2025-01-20) is dated on or after it (issue 15: the generator used to pay 90 % of the
fixed amount on some rows and to date digital sales from 2025-01-01, which the corrected
rules reject). Every row has a distinct, valid resident ID (GB 11643) and mobile
number, so a clean month respects the item limits; these identifiers are what the
pipeline must pseudonymise.

Defects (``bad_rows``), rule breakers at fixed positions (modulo the month's rows):
``subsidy_over_cap`` 7, ``digital_over_price`` 13, ``duplicate_order`` 19 (the order id of
row 18), ``over_item_limit`` 25 (row 24's consumer and category again), ``bad_id_check``
31, ``sale_outside_period`` 37, ``unknown_category`` 43, ``missing_grade`` 49 (an appliance
without grade), ``bad_uscc_check`` 55 and ``bad_phone`` 61 (warnings only).
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from functools import cache
from typing import Any

from cm_devtools.sample_server.common import REGION_CODE, days_of, make_uscc, rng
from cm_devtools.sample_server.served import Defect, ServedFeed, ServedStream
from consumption_monitor.common.identifiers import id_check_char
from consumption_monitor.common.periods import Period
from consumption_monitor.common.tradein_rules import load_rules

FEED = "tradein_transactions"
UNIT = "元"
FIRST_PERIOD = Period(2024, 1)
ROWS_ENV = "CM_TRADEIN_ROWS_PER_MONTH"
BLOCK = 1000
_ORDER_MULT = 0x9E3779B97F  # odd: i -> i * mult mod 2**40 is a bijection (unique order ids)
_ORDER_MOD = 1 << 40
_ADDRESSES = ("510402", "510403", "510411", "510421", "510422", "510104", "510105", "510107")
_BIRTH_FIRST = date(1950, 1, 1)
_BIRTH_DAYS = 20_000  # 1950-01-01 .. 2004-10
# rows per month the identifiers stay distinct for within a year: 8 addresses × 20,000
# birth dates × 1,000 sequence numbers = 160M distinct IDs ≥ 12 × _STRIDE
_STRIDE = 13_000_000
_GROUP_WEIGHTS = {"家电": 60, "数码": 25, "家装厨卫": 10, "汽车": 5}
_PRICE = {"家电": (1200, 12000), "数码": (900, 6000), "家装厨卫": (5000, 60000)}
_CAR_PRICE = (80_000, 320_000)
_MOBILE_PREFIX = ("13", "15", "17", "18", "19")

# enterprises by group: (name, USCC)
_ENTERPRISE_NAMES = {
    "家电": (
        "攀枝花市西区苏宁易购电器有限公司",
        "攀枝花市西区国美电器清香坪店",
        "攀枝花市西区格力专卖店",
        "攀枝花市西区美的智慧家电馆",
        "攀枝花市西区海尔智家体验店",
        "攀枝花市西区玉泉家电城",
    ),
    "数码": (
        "攀枝花市西区华为授权体验店",
        "攀枝花市西区小米之家",
        "攀枝花市西区中国移动营业厅",
        "攀枝花市西区OPPO专卖店",
    ),
    "汽车": ("攀枝花市西区比亚迪汽车销售服务有限公司", "攀枝花市西区长安汽车4S店"),
    "家装厨卫": (
        "攀枝花市西区欧派家居体验馆",
        "攀枝花市西区九牧卫浴专卖店",
        "攀枝花市西区老板电器厨房馆",
    ),
}


@cache
def _enterprises(group: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, make_uscc(name)) for name in _ENTERPRISE_NAMES[group])


def rows_per_month(period: Period) -> int:
    """The month's row count: exactly ``CM_TRADEIN_ROWS_PER_MONTH`` when set."""
    fixed = os.environ.get(ROWS_ENV)
    if fixed:
        return int(fixed)
    draw = rng("tradein", "volume", period)
    scale = 0.6 if period < Period(2024, 8) else 1.0
    return round(2000 * scale * draw.uniform(0.8, 1.2))


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@cache
def _weighted(text: str, offset: int) -> int:
    """Σ digit × GB 11643 weight for ``text`` placed at ``offset`` (parts are cached so
    millions of IDs cost a few additions each; the check equals ``id_check_char``)."""
    return sum(int(d) * w for d, w in zip(text, _ID_WEIGHTS[offset:], strict=False))


@cache
def _birth(day: int) -> str:
    return f"{_BIRTH_FIRST + timedelta(days=day):%Y%m%d}"


def _resident_id(period: Period, i: int) -> str:
    """A valid, distinct ID per (month of year, row): unique within the policy year."""
    g = (period.month - 1) * _STRIDE + i
    address = _ADDRESSES[g % len(_ADDRESSES)]
    rest = g // len(_ADDRESSES)
    born = _birth(rest % _BIRTH_DAYS)
    seq = f"{(rest // _BIRTH_DAYS) % 1000:03d}"
    total = _weighted(address, 0) + _weighted(born, 6) + _weighted(seq, 14)
    return f"{address}{born}{seq}{_ID_CHECK[total % 11]}"


def _phone(period: Period, i: int) -> str:
    g = (period.month - 1) * _STRIDE + i
    return f"{_MOBILE_PREFIX[g % 5]}{(g // 5 * 7919 + 1_000_003) % 1_000_000_000:09d}"


def order_id(period: Period, i: int) -> str:
    return f"TI{period.year}{period.month:02d}{(i * _ORDER_MULT) % _ORDER_MOD:010X}"


@cache
def _category_table(year: int) -> tuple[list[Any], list[float]]:
    """The year's subsidised categories and their cumulative weights."""
    rules = load_rules(year).categories
    groups = sorted({r.group for r in rules.values()})
    table, cumulative, running = [], [], 0.0
    for group in groups:
        members = [r for r in rules.values() if r.group == group]
        for rule in members:
            running += _GROUP_WEIGHTS[group] / len(members)
            table.append(rule)
            cumulative.append(running)
    return table, cumulative


def _block(period: Period, block: int, total: int) -> list[dict[str, Any]]:
    draw = random.Random(f"tradein|{period}|{block}")
    table, cumulative = _category_table(period.year)
    days = days_of(period)
    out = []
    for i in range(block * BLOCK, min(total, (block + 1) * BLOCK)):
        rule = draw.choices(table, cum_weights=cumulative)[0]
        grade = (1 if draw.random() < 0.4 else 2) if rule.grade_rates else None
        low, high = _CAR_PRICE if rule.group == "汽车" else _PRICE[rule.group]
        price = round(draw.uniform(low, high), 0 if rule.group == "汽车" else 2)
        cap = rule.max_subsidy(price, grade) or 0.0
        full = draw.random() < 0.85 or rule.fixed_amount is not None
        subsidy = int(cap * 100) / 100 if full else int(cap * 90) / 100
        name, uscc = draw.choice(_enterprises(rule.group))
        sold = draw.choice(days)
        if rule.effective_from is not None and sold < rule.effective_from <= days[-1]:
            sold = rule.effective_from
        out.append(
            {
                "period": str(period),
                "order_id": order_id(period, i),
                "sale_date": sold.isoformat(),
                "category": rule.category,
                "category_group": rule.group,
                "energy_grade": grade,
                "price": price,
                "subsidy": subsidy,
                "uscc": uscc,
                "enterprise_name": name,
                "region_code": REGION_CODE,
                "channel": "线上" if draw.random() < 0.3 else "线下",
                "consumer_id": _resident_id(period, i),
                "consumer_phone": _phone(period, i),
            }
        )
    return out


def row_at(period: Period, i: int) -> dict[str, Any]:
    total = rows_per_month(period)
    return _block(period, i // BLOCK, max(total, i + 1))[i % BLOCK]


def window(
    period: Period, revision: int, as_of: date, start: int, size: int
) -> tuple[int, list[dict[str, Any]]]:
    """(rows in the period, rows ``start`` .. ``start + size``), built block by block.
    A revision N > 0 lowers the subsidy of every 50th capped row by N yuan (a correction;
    a fixed amount cannot be lowered)."""
    total = rows_per_month(period)
    end = min(total, start + size)
    rows: list[dict[str, Any]] = []
    for block in range(start // BLOCK, (end - 1) // BLOCK + 1 if end > start else 0):
        first = block * BLOCK
        for offset, row in enumerate(_block(period, block, total)):
            if start <= first + offset < end:
                rows.append(row)
    if revision > 0:
        fixed = {n for n, r in load_rules(period.year).categories.items() if r.fixed_amount}
        for i, row in enumerate(rows, start):
            if i % 50 == 0 and row["category"] not in fixed:
                row["subsidy"] = max(0.0, round(row["subsidy"] - revision, 2))
    return total, rows


def identifiers(period: Period) -> set[str]:
    """Every clear ID number and phone the period serves (tests scan for them)."""
    out: set[str] = set()
    for i in range(rows_per_month(period)):
        out.add(_resident_id(period, i))
        out.add(_phone(period, i))
    return out


# --- defects: rule breakers at fixed positions --------------------------------------------


def _period_of(row: dict[str, Any]) -> Period:
    return Period.parse(row["period"])


def _over_cap(row: dict[str, Any]) -> None:
    row["subsidy"] = round(float(row["price"]) * 0.5, 2)


def _digital_over_price(row: dict[str, Any]) -> None:
    row.update(category="手机", category_group="数码", energy_grade=None, price=7999.0)
    row["subsidy"] = 500.0


def _same_as_previous(position: int, fields: tuple[str, ...]):
    def change(row: dict[str, Any]) -> None:
        period = _period_of(row)
        neighbour = row_at(period, (position - 1) % rows_per_month(period))
        for name in fields:
            row[name] = neighbour[name]

    return change


def _bad_id(row: dict[str, Any]) -> None:
    body = row["consumer_id"][:17]
    right = id_check_char(body)
    row["consumer_id"] = body + ("0" if right != "0" else "1")


def _outside_period(row: dict[str, Any]) -> None:
    row["sale_date"] = (_period_of(row).first_day - timedelta(days=3)).isoformat()


def _unknown_category(row: dict[str, Any]) -> None:
    row.update(category="电动自行车", category_group="家电")


def _missing_grade(row: dict[str, Any]) -> None:
    row.update(category="冰箱", category_group="家电", energy_grade=None)


def _bad_uscc(row: dict[str, Any]) -> None:
    from cm_devtools.sample_server.common import wrong_check_char

    row["uscc"] = wrong_check_char(row["uscc"])


def _bad_phone(row: dict[str, Any]) -> None:
    row["consumer_phone"] = "0812-33" + row["consumer_phone"][-5:]


DEFECTS = (
    Defect("subsidy_over_cap", 7, _over_cap),
    Defect("digital_over_price", 13, _digital_over_price),
    Defect("duplicate_order", 19, _same_as_previous(19, ("order_id",))),
    Defect(
        "over_item_limit",
        25,
        _same_as_previous(
            25,
            (
                "consumer_id",
                "category",
                "category_group",
                "energy_grade",
                "price",
                "subsidy",
                "sale_date",
            ),
        ),
    ),
    Defect("bad_id_check", 31, _bad_id),
    Defect("sale_outside_period", 37, _outside_period),
    Defect("unknown_category", 43, _unknown_category),
    Defect("missing_grade", 49, _missing_grade),
    Defect("bad_uscc_check", 55, _bad_uscc),
    Defect("bad_phone", 61, _bad_phone),
)
QUARANTINING = DEFECTS[:8]  # the defects a critical check holds back (the rest warn)


def _no_full_list(period: Period, revision: int, as_of: date) -> list[dict[str, Any]]:
    raise RuntimeError("the trade-in stream is served by window, never as a whole list")


SERVED = ServedFeed(
    name=FEED,
    unit=UNIT,
    first_period=FIRST_PERIOD,
    streams=(
        ServedStream(
            "transactions",
            "/api/v1/tradein/transactions",
            "cursor",
            _no_full_list,
            DEFECTS,
            window=window,
        ),
    ),
)
