"""The trade-in subsidy rules as derived check columns, tested by
``expectations/tradein_transactions.json``; parameters come from the policy year's rules
file (:mod:`consumption_monitor.common.tradein_rules`), never from code.

Columns (null where a rule does not apply or cannot be computed):
``_category_known`` the category is subsidised in the policy year; ``_group_ok`` the
declared group matches the rules; ``_subsidy_max`` min(price × rate for the grade, cap);
(or the category's fixed amount); ``_subsidy_within_rule`` subsidy ≤ that bound (capped
categories only); ``_subsidy_fixed_ok`` subsidy = the fixed amount to the fen (fixed-amount
categories only: the 2025 scrappage renewals); ``_grade_ok`` an appliance carries a
subsidised energy grade; ``_price_within_limit`` price ≤ the category's price limit
(digital products ≤ 6,000 元); ``_sale_in_policy_year`` the sale date lies in the rule
file's effective window (default the policy year of the period); ``_sale_in_effect`` the
sale date is inside the category's own effective dates (only categories that have them:
digital products from 2025-01-20).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from consumption_monitor.common.tradein_rules import CategoryRule, RulesMissing, load_rules
from consumption_monitor.validation.derivation_registry import DeriveContext, derivation

TOLERANCE = 0.005  # half a fen: amounts travel as decimals
FLAGS = (
    "_category_known",
    "_group_ok",
    "_subsidy_within_rule",
    "_subsidy_fixed_ok",
    "_grade_ok",
    "_price_within_limit",
    "_sale_in_policy_year",
    "_sale_in_effect",
)


class _Flag:
    """A nullable boolean column being filled: values and a null mask (null until set)."""

    def __init__(self, n: int) -> None:
        self.values = np.zeros(n, dtype=bool)
        self.null = np.ones(n, dtype=bool)

    def set(self, rows: np.ndarray, values: np.ndarray | bool, null: np.ndarray | bool = False):
        self.values[rows] = values
        self.null[rows] = null

    def array(self) -> pd.arrays.BooleanArray:
        return pd.arrays.BooleanArray(self.values & ~self.null, self.null)


def _objects(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), None, dtype=object)
    return frame[column].to_numpy(dtype=object, na_value=None)


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return frame[column].to_numpy(dtype="float64", na_value=np.nan)


def _limit(rule: CategoryRule, price: np.ndarray, grade: np.ndarray) -> tuple[np.ndarray, ...]:
    """(bound, computable, grade ok or None) per row: :meth:`CategoryRule.max_subsidy` for a
    column of prices and grades at once."""
    priced = ~np.isnan(price)
    grade_ok = None
    if rule.fixed_amount is not None:
        bound = np.full(len(price), rule.fixed_amount)
        return bound, np.ones(len(price), dtype=bool), None
    if rule.grade_rates is not None:
        rate = np.full(len(grade), np.nan)
        for value, grade_rate in rule.grade_rates.items():
            rate[grade == value] = grade_rate
        grade_ok = ~np.isnan(rate)  # a known grade (a missing one is not)
        computable, bound = priced & grade_ok, price * rate
    elif rule.rate is not None:
        computable, bound = priced, price * rule.rate
    else:  # capped only: the cap (or no bound) whatever the price
        computable, bound = np.ones(len(price), dtype=bool), np.full(len(price), np.inf)
    if rule.cap is not None:
        bound = np.minimum(bound, rule.cap)
    return bound, computable, grade_ok


def _effective(flag: _Flag, rule: CategoryRule, rows: np.ndarray, sale: np.ndarray) -> None:
    """The category's own effective dates against the sale dates (null without a date)."""
    first = rule.effective_from.isoformat() if rule.effective_from else ""
    last = rule.effective_to.isoformat() if rule.effective_to else "9999-12-31"
    dated = np.fromiter((type(v) is str for v in sale), dtype=bool, count=len(sale))
    inside = np.fromiter(
        (type(v) is str and first <= v[:10] <= last for v in sale), dtype=bool, count=len(sale)
    )
    flag.set(rows[dated], inside[dated])


@derivation(
    "tradein_rules",
    inputs=("sale_date", "category_group", "price", "energy_grade", "subsidy", "category"),
    outputs=(*FLAGS, "_subsidy_max"),
)
def tradein_rules(frame: pd.DataFrame, stream: str, ctx: DeriveContext) -> pd.DataFrame:
    """Column-wise, one category at a time: a chunk has tens of thousands of rows and a
    dozen or so categories, so the rules are applied as array operations per category."""
    year = int(ctx.period[:4])
    try:
        policy = load_rules(year)
        rules, window = policy.categories, (policy.effective_from, policy.effective_to)
    except RulesMissing:
        rules = {}  # every row fails _category_known: the suite says why
        window = (date(year, 1, 1), date(year, 12, 31))
    n = len(frame)
    flags = {name: _Flag(n) for name in FLAGS}
    bound_values, bound_null = np.zeros(n), np.ones(n, dtype=bool)

    sale = _objects(frame, "sale_date")
    is_text = np.fromiter((type(v) is str for v in sale), dtype=bool, count=n)
    first, last = (d.isoformat() for d in window)  # ISO dates compare as text
    in_year = np.fromiter(
        (type(v) is str and first <= v[:10] <= last for v in sale), dtype=bool, count=n
    )
    flags["_sale_in_policy_year"].set(is_text, in_year[is_text])

    declared = _objects(frame, "category_group")
    price, grade, subsidy = (_floats(frame, c) for c in ("price", "energy_grade", "subsidy"))
    codes, categories = pd.factorize(_objects(frame, "category"))  # None -> -1: no rule
    for code, category in enumerate(categories):
        rows = np.flatnonzero(codes == code)
        rule = rules.get(category)
        flags["_category_known"].set(rows, rule is not None)
        if rule is None:
            continue
        group = declared[rows]
        flags["_group_ok"].set(rows, group == rule.group, pd.isna(group))
        p, s = price[rows], subsidy[rows]
        bound, computable, grade_ok = _limit(rule, p, grade[rows])
        if grade_ok is not None:
            flags["_grade_ok"].set(rows, grade_ok)
        if rule.effective_from is not None or rule.effective_to is not None:
            _effective(flags["_sale_in_effect"], rule, rows, sale[rows])
        finite = computable & np.isfinite(bound)
        bound_values[rows[finite]] = [round(float(b), 2) for b in bound[finite]]
        bound_null[rows[finite]] = False
        with np.errstate(invalid="ignore"):  # NaN compares False and is masked as null
            unknown = ~(computable & ~np.isnan(s))
            if rule.fixed_amount is not None:
                exact = np.abs(s - rule.fixed_amount) <= TOLERANCE
                flags["_subsidy_fixed_ok"].set(rows, exact, unknown)
            else:
                flags["_subsidy_within_rule"].set(rows, s <= bound + TOLERANCE, unknown)
            if rule.price_max is not None:
                price_ok = p <= rule.price_max + TOLERANCE
                flags["_price_within_limit"].set(rows, price_ok, np.isnan(p))
    for name, flag in flags.items():
        frame[name] = flag.array()
    frame["_subsidy_max"] = pd.arrays.FloatingArray(bound_values, bound_null)
    return frame
