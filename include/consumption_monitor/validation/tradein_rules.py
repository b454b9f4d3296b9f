"""Trade-in (以旧换新) subsidy rules per policy year, read from
``reference/tradein_rules_<year>.yaml``: rates, caps, price limits and item limits are
configuration, so a new year or a local rule change is a file, not a code change. The
feed's checks and the sample server both read them."""

from __future__ import annotations

from dataclasses import dataclass
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

    def max_subsidy(self, price: float | None, grade: int | None) -> float | None:
        """min(price × rate for the grade, cap); None when it cannot be computed (no price,
        a grade the rules do not know). Categories without a rate are capped only."""
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


@dataclass(frozen=True)
class PolicyRules:
    year: int
    source: str
    categories: dict[str, CategoryRule]

    def limits(self) -> dict[str, int]:
        return {name: rule.item_limit for name, rule in self.categories.items()}


def _category(name: str, raw: dict[str, Any], groups: dict[str, dict[str, Any]]) -> CategoryRule:
    merged = {**groups.get(raw["group"], {}), **raw}
    rates = merged.get("grade_rates")
    return CategoryRule(
        category=name,
        group=merged["group"],
        grade_rates={int(k): float(v) for k, v in rates.items()} if rates else None,
        rate=float(merged["rate"]) if merged.get("rate") is not None else None,
        cap=float(merged["cap"]) if merged.get("cap") is not None else None,
        price_max=float(merged["price_max"]) if merged.get("price_max") is not None else None,
        item_limit=int(merged.get("item_limit", 1)),
    )


@cache
def load_rules(year: int) -> PolicyRules:
    path = resources.files("consumption_monitor") / "reference" / f"tradein_rules_{year}.yaml"
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
    return PolicyRules(
        year=year,
        source=str(raw.get("source", "")),
        categories={n: _category(n, c, groups) for n, c in raw["categories"].items()},
    )
