"""Trade-in (以旧换新) subsidy rules per policy year, read from
``reference/tradein_rules_<year>.yaml``: rates, caps, fixed amounts, price limits, item
limits and effective dates are configuration, so a new year or a local rule change is a
file, not a code change. The feed's checks, the sample server and the monthly report's
footnote all read them (hence ``common``: validation and indicators may not import each
other).

Decisions recorded here (issue 15 §4):
- A category either caps its subsidy (``cap``: subsidy ≤ min(price × rate, cap)) or pays a
  fixed amount (``fixed_amount``: subsidy = the amount, to the fen). The 2025 scrappage
  renewals (报废更新) are fixed (20,000 元 new-energy, 15,000 元 fuel ≤ 2.0 L); replacement
  renewals (置换更新) stay caps. Under the old reading 87 of 571 scrappage transactions of
  2025 in the sample feed paid 18,000 or 13,500 and passed.
- Rules have effective dates: the file's ``effective_from``/``effective_to`` (default the
  policy year) and, per group or category, their own (the national digital-product
  subsidy applies to sales from 2025-01-20). A sale before its category's start breaks
  the rule.
- A file lists what in it is not verified against a published notice (``unverified:``);
  validation reports and the monthly report's footnote show that list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import yaml

GROUPS = ("家电", "数码", "汽车", "家装厨卫")


class RulesMissing(LookupError):
    """No rules file for a policy year."""


@dataclass(frozen=True)
class CategoryRule:
    category: str
    group: str
    grade_rates: dict[int, float] | None  # energy grade -> rate (appliances)
    rate: float | None  # flat rate of the price (digital, home renovation)
    cap: float | None  # maximum subsidy per item, 元
    price_max: float | None  # maximum eligible price per item, 元
    item_limit: int  # items per consumer, category and year
    fixed_amount: float | None = None  # the subsidy is exactly this, 元 (not a cap)
    effective_from: date | None = None  # first sale date the rule applies to
    effective_to: date | None = None  # last sale date the rule applies to

    def max_subsidy(self, price: float | None, grade: int | None) -> float | None:
        """min(price × rate for the grade, cap), or the fixed amount; None when it cannot
        be computed (no price, a grade the rules do not know). Categories without a rate
        are capped only."""
        if self.fixed_amount is not None:
            return self.fixed_amount
        if self.grade_rates is not None:
            if price is None or grade not in self.grade_rates:
                return None
            bound = price * self.grade_rates[grade]
        elif self.rate is not None:
            if price is None:
                return None
            bound = price * self.rate
        else:
            bound = float("inf")
        return min(bound, self.cap) if self.cap is not None else bound

    def in_effect(self, day: date) -> bool:
        """The rule applies to a sale on ``day``."""
        after = self.effective_from is None or day >= self.effective_from
        return after and (self.effective_to is None or day <= self.effective_to)


@dataclass(frozen=True)
class PolicyRules:
    year: int
    source: str
    categories: dict[str, CategoryRule]
    effective_from: date
    effective_to: date
    unverified: tuple[str, ...] = ()  # what in the file is not verified (empty: verified)

    def limits(self) -> dict[str, int]:
        return {name: rule.item_limit for name, rule in self.categories.items()}

    @property
    def file_name(self) -> str:
        return f"tradein_rules_{self.year}.yaml"

    def unverified_note(self) -> str | None:
        """One Chinese line for reports when the file holds unverified rules, else None."""
        if not self.unverified:
            return None
        return (
            f"以旧换新补贴规则 reference/{self.file_name} 含未经核实的规则："
            f"{'；'.join(self.unverified)}"
        )


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _number(merged: dict[str, Any], key: str) -> float | None:
    return float(merged[key]) if merged.get(key) is not None else None


def _category(name: str, raw: dict[str, Any], groups: dict[str, dict[str, Any]]) -> CategoryRule:
    merged = {**groups.get(raw["group"], {}), **raw}
    rates = merged.get("grade_rates")
    if merged.get("fixed_amount") is not None and merged.get("cap") is not None:
        raise RulesMissing(f"{name}: a fixed amount and a cap exclude each other")
    return CategoryRule(
        category=name,
        group=merged["group"],
        grade_rates={int(k): float(v) for k, v in rates.items()} if rates else None,
        rate=_number(merged, "rate"),
        cap=_number(merged, "cap"),
        price_max=_number(merged, "price_max"),
        item_limit=int(merged.get("item_limit", 1)),
        fixed_amount=_number(merged, "fixed_amount"),
        effective_from=_day(merged.get("effective_from")),
        effective_to=_day(merged.get("effective_to")),
    )


def _rules_path(year: int):
    return resources.files("consumption_monitor") / "reference" / f"tradein_rules_{year}.yaml"


@cache
def load_rules(year: int) -> PolicyRules:
    path = _rules_path(year)
    if not path.is_file():
        raise RulesMissing(
            f"没有 {year} 年以旧换新补贴规则文件（reference/tradein_rules_{year}.yaml）"
        )
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if int(raw["policy_year"]) != year:
        raise RulesMissing(f"{path}: policy_year {raw['policy_year']} is not {year}")
    groups = raw.get("groups") or {}
    unknown = {c["group"] for c in raw["categories"].values()} - set(GROUPS)
    if unknown:
        raise RulesMissing(f"{path}: unknown category groups {sorted(unknown)}")
    first = _day(raw.get("effective_from")) or date(year, 1, 1)
    last = _day(raw.get("effective_to")) or date(year, 12, 31)
    if first.year != year or last.year != year or last < first:
        raise RulesMissing(f"{path}: effective {first}..{last} is not a range inside {year}")
    return PolicyRules(
        year=year,
        source=str(raw.get("source", "")),
        categories={n: _category(n, c, groups) for n, c in raw["categories"].items()},
        effective_from=first,
        effective_to=last,
        unverified=tuple(str(x) for x in raw.get("unverified") or ()),
    )


def unverified_note(year: int) -> str | None:
    """The footnote line for a policy year: its file's unverified rules, a missing file, or
    None when the year's rules are all verified."""
    try:
        return load_rules(year).unverified_note()
    except RulesMissing as exc:
        return str(exc)
