"""Helpers every sample data module shares: stable randomness, money, identifiers.

Every figure the sample server serves must be recomputable in any process on any day, so
all randomness comes from ``random.Random(<stable string>)`` (str seeds are hashed with
SHA-512, never with the salted ``hash()``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

import yaml

from consumption_monitor.common.identifiers import USCC_ALPHABET, uscc_check_char
from consumption_monitor.common.periods import Period

REGION_CODE = "510403"
REGION_NAME = "西区"


@cache
def feed_codes() -> dict[str, Any]:
    """The code lists of the online retail, employment and 12315 feeds."""
    text = resources.files("consumption_monitor") / "reference" / "feed_codes.yaml"
    return yaml.safe_load(text.read_text(encoding="utf-8"))


def rng(*parts: object) -> random.Random:
    """A generator seeded by the parts joined with ``|``."""
    return random.Random("|".join(str(part) for part in parts))


def money(cents: int | None) -> float | None:
    """Hundredths of 万元 (exact integers while summing) to 万元 with two decimals."""
    return None if cents is None else cents / 100


def make_uscc(name: str, region: str = REGION_CODE) -> str:
    """A valid USCC for an enterprise of ``region``: 9 (工商) 1 (企业), region, org, check."""
    draw = rng("uscc", name)
    if draw.random() < 0.6:  # codes issued since 2015 start with "MA"
        org = "MA" + "".join(draw.choice(USCC_ALPHABET) for _ in range(7))
    else:  # older units keep their 8-digit organisation code and its check character
        org = "".join(draw.choice("0123456789") for _ in range(8)) + draw.choice(USCC_ALPHABET)
    body = "91" + region + org
    return body + uscc_check_char(body)


def wrong_check_char(uscc: str) -> str:
    """The USCC with its 18th character replaced by the next one of the alphabet."""
    wrong = USCC_ALPHABET[(USCC_ALPHABET.index(uscc[17]) + 1) % len(USCC_ALPHABET)]
    return uscc[:17] + wrong


def days_of(period: Period) -> list[date]:
    """Every calendar day of the period's month."""
    first = period.first_day
    following = period.shift(1).first_day
    return [first + timedelta(days=i) for i in range((following - first).days)]


def comparable_rate(current: float, prior: float, *key: object) -> float:
    """A published, comparable-basis growth rate: the naive rate plus a restatement effect
    of ±0.2–1.5 points, so it differs from a recomputation as real releases do."""
    naive = (current / prior - 1) * 100
    draw = rng("yoy", *key)
    return round(naive + draw.choice((-1, 1)) * draw.uniform(0.2, 1.5), 1)


# Row edits shared by the feeds' defect lists (each feed's ``DEFECTS`` picks the rows).


def set_field(field: str, value: Any):
    """An edit that sets ``field`` to ``value`` (an unknown code, a wrong region…)."""

    def change(row: dict[str, Any]) -> None:
        row[field] = value

    return change


def previous_period(row: dict[str, Any]) -> None:
    """Label the row with the month before its period (a row from the wrong month)."""
    row["period"] = str(Period.parse(row["period"]).shift(-1))


def bad_check(row: dict[str, Any]) -> None:
    """Replace the USCC's check character with a wrong one (well formed, check fails)."""
    row["uscc"] = wrong_check_char(row["uscc"])
