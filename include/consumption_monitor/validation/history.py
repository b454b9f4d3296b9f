"""Checks that one chunk cannot decide: they need the whole batch and the warehouse.

Why not a GX expectation: Great Expectations sees one chunk at a time (memory stays
bounded), while an order id must be unique across every page and every loaded period, and
a consumer's item limit counts the items of earlier months. Each check here keeps compact
keys while the chunks go by (64-bit hashes, not strings: 1M rows cost ~25 MB), asks the
warehouse about the keys it saw, and returns the rows that break it. The runner turns
that into an :class:`~consumption_monitor.validation.runner.Outcome` with the check's
severity, so rejection and quarantine follow the same policy as the suite's expectations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from consumption_monitor.feeds.spec import CheckSpec, StreamSpec
from consumption_monitor.tradein_rules import RulesMissing, load_rules
from consumption_monitor.warehouse import schema

IN_BATCH = 900  # bound parameters per IN list (SQLite's historic limit is 999)
ARRAY_BATCH = 50_000  # keys per array parameter on PostgreSQL (one parameter, one round trip)


def _hash(values: pd.Series) -> np.ndarray:
    return pd.util.hash_array(values.astype(object).fillna("").to_numpy(dtype=object))


def _chunks(values: list[Any], size: int = IN_BATCH) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _member_of(engine: Engine, column: ColumnElement[Any]) -> tuple[ColumnElement[bool], int]:
    """``column`` among the keys bound as ``keys``, and how many keys one statement takes.

    Why two forms: on PostgreSQL the keys travel as one array parameter (``= any(:keys)``),
    so a chunk of 50,000 keys is one short statement; an expanding ``IN`` list renders and
    parses one placeholder per key, which cost more than the lookup itself. SQLite has no
    arrays and a bound-parameter limit, so it gets ``IN`` lists of ``IN_BATCH``.
    """
    if engine.dialect.name == "postgresql":
        return column == any_(bindparam("keys", type_=ARRAY(String))), ARRAY_BATCH
    return column.in_(bindparam("keys", expanding=True)), IN_BATCH


@dataclass
class HistoryCheck:
    """Observe every chunk, then ``finish`` with the rows (batch positions) that fail."""

    spec: CheckSpec
    stream: StreamSpec
    period: str
    engine: Engine
    parts: list[pd.DataFrame] = field(default_factory=list)
    flagged: set[int] = field(default_factory=set)
    sample: list[Any] = field(default_factory=list)
    elements: int = 0

    def __post_init__(self) -> None:
        """Subclasses set up what they need from the rules (called by the dataclass)."""

    def observe(self, frame: pd.DataFrame) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _flag(self, rows: Iterable[int], values: Iterable[Any]) -> None:
        for row, value in zip(rows, values, strict=True):
            self.flagged.add(int(row))
            if len(self.sample) < 10:
                self.sample.append(value)


class UniqueAcrossPeriods(HistoryCheck):
    """A key column unique over the batch (all chunks) and the other periods' core rows."""

    def observe(self, frame: pd.DataFrame) -> None:
        column = self.spec.kwargs["column"]
        if column not in frame:
            return
        values = frame[column]
        present = values.notna()
        self.elements += int(present.sum())
        self.parts.append(
            pd.DataFrame(
                {
                    "row": frame.loc[present, "_row"].to_numpy(dtype=np.int32),
                    "h": _hash(values[present]),
                }
            )
        )
        core = schema.core(self.stream)
        member, size = _member_of(self.engine, core.c[column])
        stmt = select(core.c[column]).where(core.c[self.stream.keys[0]] != self.period, member)
        known: set[str] = set()
        ids = values[present].tolist()
        with self.engine.connect() as conn:
            for part in _chunks(ids, size):
                known.update(conn.execute(stmt, {"keys": part}).scalars())
        if known:
            hit = frame[present & values.isin(known)]
            self._flag(hit["_row"], hit[column])

    def finish(self) -> None:
        if not self.parts:
            return
        rows = np.concatenate([p["row"].to_numpy() for p in self.parts])
        hashes = np.concatenate([p["h"].to_numpy() for p in self.parts])
        self.parts = []
        order = np.argsort(hashes, kind="stable")  # chunks came in row order
        ordered = hashes[order]
        repeated = np.zeros(len(order), dtype=bool)  # the first occurrence stays
        repeated[1:] = ordered[1:] == ordered[:-1]
        flagged = np.sort(rows[order][repeated])
        self._flag(flagged, ["(批次内重复)"] * len(flagged))


class TradeinItemLimit(HistoryCheck):
    """Items per (consumer, category, policy year) within the year's limit, counting the
    items of the year's other periods already in the warehouse; items beyond the limit are
    flagged in sale-date order (the earliest sales used the allowance)."""

    prior: dict[tuple[int, str], int]

    def __post_init__(self) -> None:
        year = int(self.period[:4])
        try:
            self.limits = load_rules(year).limits()
        except RulesMissing:
            self.limits = {}
        self.prior = {}
        self.year = year
        # small integer codes keep the per-row keys at 18 bytes (10M rows: ~180 MB)
        self.codes = {name: i for i, name in enumerate(sorted(self.limits))}
        self.names = sorted(self.limits)

    def observe(self, frame: pd.DataFrame) -> None:
        if not {"consumer_key", "category"} <= set(frame.columns):
            return
        present = frame["consumer_key"].notna() & frame["category"].isin(list(self.limits))
        part = frame.loc[present, ["_row", "consumer_key", "category", "sale_date"]]
        self.elements += len(part)
        if part.empty:
            return
        day = part["sale_date"].astype(object).fillna("0").str.replace("-", "", regex=False)
        self.parts.append(
            pd.DataFrame(
                {
                    "row": part["_row"].to_numpy(dtype=np.int32),
                    "consumer": _hash(part["consumer_key"]),
                    "category": part["category"].map(self.codes).to_numpy(dtype=np.int16),
                    "day": pd.to_numeric(day, errors="coerce").fillna(0).to_numpy(np.int32),
                }
            )
        )
        self._prior_counts(part)

    def _prior_counts(self, part: pd.DataFrame) -> None:
        core = schema.core(self.stream)
        member, size = _member_of(self.engine, core.c.consumer_key)
        stmt = select(core.c.consumer_key, core.c.category, core.c.period).where(
            core.c.period >= f"{self.year}-01",
            core.c.period <= f"{self.year}-12",
            core.c.period != self.period,
            member,
        )
        keys = sorted(set(part["consumer_key"]))
        found: list[tuple[str, str]] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(keys, size):
                found.extend((c, k) for c, k, _ in conn.execute(stmt, {"keys": chunk}))
        if found:
            hashes = _hash(pd.Series([c for c, _ in found]))
            for h, (_, category) in zip(hashes, found, strict=True):
                key = (int(h), self.codes.get(category, -1))
                self.prior[key] = self.prior.get(key, 0) + 1

    def finish(self) -> None:
        if not self.parts:
            return
        # numpy on the compact keys (no DataFrame copies): peak ~50 bytes per row
        parts, self.parts = self.parts, []
        row = np.concatenate([p["row"].to_numpy() for p in parts])
        consumer = np.concatenate([p["consumer"].to_numpy() for p in parts])
        category = np.concatenate([p["category"].to_numpy() for p in parts])
        day = np.concatenate([p["day"].to_numpy() for p in parts])
        del parts
        order = np.lexsort((row, day, category, consumer))  # the last key sorts first
        del day
        consumer, category, row = consumer[order], category[order], row[order]
        del order
        n = len(row)
        starts = np.ones(n, dtype=bool)
        starts[1:] = (consumer[1:] != consumer[:-1]) | (category[1:] != category[:-1])
        index = np.arange(n)
        rank = index - np.maximum.accumulate(np.where(starts, index, 0)) + 1
        del starts, index
        prior = (
            np.zeros(n, dtype=np.int64)
            if not self.prior
            else np.fromiter(
                (
                    self.prior.get((int(c), int(k)), 0)
                    for c, k in zip(consumer, category, strict=True)
                ),
                dtype=np.int64,
                count=n,
            )
        )
        limits = np.array([self.limits[name] for name in self.names], dtype=np.int64)
        limit = limits[category]
        count = rank + prior
        over = count > limit
        self._flag(
            row[over],
            [
                f"{self.names[c]}: 第{m}件（上限 {lim}）"
                for c, m, lim in zip(category[over], count[over], limit[over], strict=True)
            ],
        )


CHECKS: dict[str, Callable[..., HistoryCheck]] = {
    "unique_across_periods": UniqueAcrossPeriods,
    "tradein_item_limit": TradeinItemLimit,
}


def make_checks(stream: StreamSpec, period: str, engine: Engine) -> list[HistoryCheck]:
    unknown = [c.name for c in stream.history_checks if c.name not in CHECKS]
    if unknown:
        raise KeyError(f"unknown history checks {unknown} (known: {sorted(CHECKS)})")
    return [CHECKS[c.name](c, stream, period, engine) for c in stream.history_checks]
