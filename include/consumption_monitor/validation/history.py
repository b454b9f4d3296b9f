"""Checks that one chunk cannot decide: they need the whole batch and the warehouse.

Why not a GX expectation: Great Expectations sees one chunk at a time (memory stays
bounded), while an order id must be unique across every page and every loaded period, and
a consumer's item limit counts the items of earlier months. Each check here keeps compact
keys while the chunks go by (64-bit hashes, not strings, stored at each row's batch position
in preallocated arrays: 10M rows cost ~9 bytes per row per check, and finishing sorts one
copy of one column, never the whole set twice), asks the warehouse about the keys it saw,
and returns the rows that break it. The runner turns
that into an :class:`~consumption_monitor.validation.runner.Outcome` with the check's
severity, so rejection and quarantine follow the same policy as the suite's expectations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    Select,
    String,
    Text,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from consumption_monitor.common.tradein_rules import RulesMissing, load_rules
from consumption_monitor.feeds.spec import CheckSpec, StreamSpec
from consumption_monitor.validation.keyhash import text_keys
from consumption_monitor.warehouse import schema

IN_BATCH = 900  # bound parameters per IN list (SQLite's historic limit is 999)
ARRAY_BATCH = 50_000  # keys per array parameter on PostgreSQL (one parameter, one round trip)


def _chunks(values: list[Any], size: int = IN_BATCH) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


KEY_SEPARATOR = "\x1f"  # joins text keys into one parameter (ASCII unit separator)


def _member_of(engine: Engine, column: ColumnElement[Any]) -> tuple[ColumnElement[bool], int]:
    """``column`` among the keys bound as ``keys``, and how many keys one statement takes.

    Why two forms: on PostgreSQL the keys travel as one parameter, so a chunk of 50,000 keys
    is one short statement; an expanding ``IN`` list renders and parses one placeholder per
    key, which cost more than the lookup itself. SQLite has no arrays and a bound-parameter
    limit, so it gets ``IN`` lists of ``IN_BATCH``.
    """
    if engine.dialect.name == "postgresql":
        return column == any_(bindparam("keys", type_=ARRAY(String))), ARRAY_BATCH
    return column.in_(bindparam("keys", expanding=True)), IN_BATCH


def _joined_member_of(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """PostgreSQL: ``column`` among text keys sent as one string joined by
    ``KEY_SEPARATOR`` and split by the server. Why: psycopg adapts an array parameter key
    by key in Python (~4 s of a 1M-row trade-in validation); one string is one value."""
    keys = func.string_to_array(bindparam("joined", type_=Text), KEY_SEPARATOR)
    return column == any_(keys)


def _joined(keys: list[Any]) -> str | None:
    """``keys`` joined by ``KEY_SEPARATOR`` when the joined form carries each as it is: all
    text, none empty (``string_to_array('')`` is empty, not {''}), none holding the
    separator; else None. Checked on the joined string, not key by key in Python (~0.35 s
    of 1M keys)."""
    try:
        joined = KEY_SEPARATOR.join(keys)
    except TypeError:  # a key that is not text
        return None
    if joined.count(KEY_SEPARATOR) != len(keys) - 1 or not all(map(len, keys)):
        return None
    return joined


def rows_matching(
    engine: Engine, query: Select[Any], column: ColumnElement[Any], keys: list[Any]
) -> Iterator[Row[Any]]:
    """The rows of ``query`` whose ``column`` is one of ``keys``, asked a batch of keys at a
    time in the form the database takes best (:func:`_member_of`); on PostgreSQL, text keys
    free of the separator go joined in one string (:func:`_joined_member_of`)."""
    member, size = _member_of(engine, column)
    stmt = query.where(member)
    joined = query.where(_joined_member_of(column)) if engine.dialect.name == "postgresql" else None
    with engine.connect() as conn:
        for part in _chunks(keys, size):
            text_form = _joined(part) if joined is not None else None
            if text_form is not None:
                yield from conn.execute(joined, {"joined": text_form})
            else:
                yield from conn.execute(stmt, {"keys": part})


BLOCK_ROWS = 1_000_000  # rows per step when matching keys (bounds the temporaries)


class RowArrays:
    """Per-row values of a whole batch, each at its batch position (``_row``).

    Why not a list of per-chunk parts: concatenating them when the batch is complete needs
    the parts and the result at once, doubling the largest memory of validation. With the
    row count known from the archive manifest the arrays are allocated once; should more
    rows come, they grow (doubling), so a wrong count costs memory, never correctness.
    """

    def __init__(self, dtypes: dict[str, Any], capacity: int, fill: dict[str, Any]) -> None:
        self.fill = fill
        self.size = 0
        self.arrays = {
            name: np.full(max(capacity, 0), fill[name], dtype=dtype)
            for name, dtype in dtypes.items()
        }

    def put(self, rows: np.ndarray, **values: np.ndarray) -> None:
        if not len(rows):
            return
        end = int(rows.max()) + 1
        for name, array in self.arrays.items():
            if end > len(array):
                grown = np.full(max(end, 2 * len(array)), self.fill[name], dtype=array.dtype)
                grown[: len(array)] = array
                self.arrays[name] = grown
        for name, value in values.items():
            self.arrays[name][rows] = value
        self.size = max(self.size, end)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name][: self.size]

    def release(self) -> None:
        self.arrays = {}


def repeated_values(values: np.ndarray) -> np.ndarray:
    """The distinct values occurring more than once (sorted). Sorts ``values`` in place:
    pass a copy (a masked selection is one), so no second copy is made."""
    values.sort()
    return np.unique(values[1:][values[1:] == values[:-1]])


def positions_of(values: np.ndarray, wanted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Positions (ascending) where ``mask`` holds and the value is one of ``wanted`` (sorted
    unique), matched a block at a time so the temporaries stay small."""
    found: list[np.ndarray] = []
    if not len(wanted):
        return np.zeros(0, dtype=np.int64)
    for start in range(0, len(values), BLOCK_ROWS):
        block = values[start : start + BLOCK_ROWS]
        at = np.minimum(np.searchsorted(wanted, block), len(wanted) - 1)
        hit = (wanted[at] == block) & mask[start : start + BLOCK_ROWS]
        found.append(np.flatnonzero(hit) + start)
    return np.concatenate(found)


@dataclass
class HistoryCheck:
    """Observe every chunk, then ``finish`` with the rows (batch positions) that fail."""

    spec: CheckSpec
    stream: StreamSpec
    period: str
    engine: Engine
    rows_hint: int = 0  # rows in the batch's stream (the manifest's count), for RowArrays
    flagged: set[int] = field(default_factory=set)
    sample: list[Any] = field(default_factory=list)
    elements: int = 0
    _holds: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        """Subclasses set up what they need from the rules (called by the dataclass)."""

    def observe(self, frame: pd.DataFrame) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _matching(
        self, query: Select[Any], column: ColumnElement[Any], keys: pa.Array
    ) -> Iterator[Row[Any]]:
        """:func:`rows_matching` for ``keys``, skipped when ``query`` has no row at all
        (asked once per check): the first period of a history sends no keys. Why: even
        against no rows PostgreSQL folds each 50,000-key array while planning (~37 ms a
        statement, ~1 s of a 1M-row batch's two checks), and listing the keys in Python
        costs as much again."""
        if column.key not in self._holds:
            with self.engine.connect() as conn:
                self._holds[column.key] = conn.execute(query.limit(1)).first() is not None
        if not self._holds[column.key] or not len(keys):
            return iter(())
        return rows_matching(self.engine, query, column, keys.to_pylist())

    def _flag(self, rows: Iterable[int], values: Iterable[Any]) -> None:
        for row, value in zip(rows, values, strict=True):
            self.flagged.add(int(row))
            if len(self.sample) < 10:
                self.sample.append(value)


class UniqueAcrossPeriods(HistoryCheck):
    """A key column unique over the batch (all chunks) and the other periods' core rows."""

    def __post_init__(self) -> None:
        self.keys = RowArrays(
            {"h": np.uint64, "present": bool}, self.rows_hint, {"h": 0, "present": False}
        )

    def observe(self, frame: pd.DataFrame) -> None:
        column = self.spec.kwargs["column"]
        if column not in frame:
            return
        values = frame[column]
        present = values.notna()
        self.elements += int(present.sum())
        self.keys.put(
            frame.loc[present, "_row"].to_numpy(dtype=np.int64),
            h=text_keys(values[present]),
            present=True,
        )
        core = schema.core(self.stream)
        other_periods = select(core.c[column]).where(core.c.period != self.period)
        ids = pa.array(values[present])
        known = {row[0] for row in self._matching(other_periods, core.c[column], ids)}
        if known:
            hit = frame[present & values.isin(known)]
            self._flag(hit["_row"], hit[column])

    def finish(self) -> None:
        hashes, present = self.keys["h"], self.keys["present"]
        twice = repeated_values(hashes[present])
        rows = positions_of(hashes, twice, present)  # every occurrence, in row order
        self.keys.release()
        if not len(rows):
            return
        _, first = np.unique(hashes[rows], return_index=True)  # the first occurrence stays
        repeat = np.ones(len(rows), dtype=bool)
        repeat[first] = False
        flagged = rows[repeat]
        self._flag(flagged, ["(批次内重复)"] * len(flagged))


class TradeinItemLimit(HistoryCheck):
    """Items per (consumer, category, policy year) within the year's limit, counting the
    items of the year's other periods already in the warehouse; items beyond the limit are
    flagged in sale-date order (the earliest sales used the allowance)."""

    prior: dict[tuple[int, int], int]

    def __post_init__(self) -> None:
        year = int(self.period[:4])
        try:
            self.limits = load_rules(year).limits()
        except RulesMissing:
            self.limits = {}
        self.prior = {}
        self.year = year
        self.names = sorted(self.limits)
        self.codes = {name: i for i, name in enumerate(self.names)}
        self._names = pa.array(self.names, type=pa.large_string())
        # small codes keep a row at 13 bytes (10M rows: ~130 MB); -1: not counted
        code_type = np.int8 if len(self.names) < 127 else np.int16
        self.items = RowArrays(
            {"consumer": np.uint64, "category": code_type, "day": np.int32},
            self.rows_hint,
            {"consumer": 0, "category": -1, "day": 0},
        )

    def observe(self, frame: pd.DataFrame) -> None:
        if not {"consumer_key", "category"} <= set(frame.columns):
            return
        present = frame["consumer_key"].notna() & frame["category"].isin(list(self.limits))
        part = frame.loc[present, ["_row", "consumer_key", "category", "sale_date"]]
        self.elements += len(part)
        if part.empty:
            return
        self.items.put(
            part["_row"].to_numpy(dtype=np.int64),
            consumer=text_keys(part["consumer_key"]),
            category=pc.index_in(pa.array(part["category"]), value_set=self._names).to_numpy(),
            day=_day_numbers(part["sale_date"]),
        )
        self._prior_counts(part)

    def _prior_counts(self, part: pd.DataFrame) -> None:
        core = schema.core(self.stream)
        year_elsewhere = select(core.c.consumer_key, core.c.category).where(
            core.c.period >= f"{self.year}-01",
            core.c.period <= f"{self.year}-12",
            core.c.period != self.period,
        )
        keys = pc.unique(pa.array(part["consumer_key"])).drop_null()
        found = [(c, k) for c, k in self._matching(year_elsewhere, core.c.consumer_key, keys)]
        if found:
            hashes = text_keys([c for c, _ in found])
            for h, (_, category) in zip(hashes, found, strict=True):
                key = (int(h), self.codes.get(category, -1))
                self.prior[key] = self.prior.get(key, 0) + 1

    @staticmethod
    def _group_key(consumer: np.ndarray, category: np.ndarray) -> np.ndarray:
        """One 64-bit key per (consumer, category): equal pairs give equal keys (a rare
        collision only makes more rows candidates; the count itself uses both columns)."""
        keys = category.astype(np.uint64)  # one temporary, then in place
        keys *= np.uint64(0x9E3779B97F4A7C15)
        keys ^= consumer
        return keys

    def _candidates(self, consumer: np.ndarray, category: np.ndarray) -> np.ndarray:
        """Rows that can exceed a limit: their (consumer, category) occurs more than once in
        the batch or already has items in the year, or the category allows no item. Every
        other row is its pair's only item, within any limit of at least one."""
        counted = category >= 0
        keys = self._group_key(consumer, category)
        wanted = repeated_values(keys[counted])
        if self.prior:
            prior = np.array([(c, k) for c, k in self.prior if k >= 0], dtype=np.uint64)
            if len(prior):
                wanted = np.union1d(wanted, self._group_key(prior[:, 0], prior[:, 1]))
        rows = positions_of(keys, wanted, counted)
        del keys
        none_allowed = [self.codes[n] for n in self.names if self.limits[n] < 1]
        if none_allowed:
            rows = np.union1d(rows, np.flatnonzero(np.isin(category, none_allowed)))
        return rows

    def finish(self) -> None:
        consumer, category, day = self.items["consumer"], self.items["category"], self.items["day"]
        rows = self._candidates(consumer, category)
        consumer, category, day = consumer[rows], category[rows].astype(np.int64), day[rows]
        self.items.release()
        if not len(rows):
            return
        order = np.lexsort((rows, day, category, consumer))  # the last key sorts first
        consumer, category, rows = consumer[order], category[order], rows[order]
        n = len(rows)
        starts = np.ones(n, dtype=bool)
        starts[1:] = (consumer[1:] != consumer[:-1]) | (category[1:] != category[:-1])
        index = np.arange(n)
        rank = index - np.maximum.accumulate(np.where(starts, index, 0)) + 1
        prior = np.fromiter(
            (self.prior.get((int(c), int(k)), 0) for c, k in zip(consumer, category, strict=True)),
            dtype=np.int64,
            count=n,
        )
        limits = np.array([self.limits[name] for name in self.names], dtype=np.int64)
        limit = limits[category]
        count = rank + prior
        over = count > limit
        self._flag(
            rows[over],
            [
                f"{self.names[c]}: 第{m}件（上限 {lim}）"
                for c, m, lim in zip(category[over], count[over], limit[over], strict=True)
            ],
        )


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """``YYYY-MM-DD`` texts as ``int32`` YYYYMMDD (sale-date order), 0 for a missing or
    otherwise shaped one (it sorts first). In Arrow: the string path took ~0.75 s of 1M
    rows."""
    texts = pa.array(dates, type=pa.large_string(), from_pandas=True)
    shaped = pc.fill_null(pc.match_substring_regex(texts, r"^\d{4}-\d{2}-\d{2}$"), False)
    digits = pc.replace_substring(pc.if_else(shaped, texts, "0"), "-", "")
    return pc.cast(digits, pa.int32()).to_numpy(zero_copy_only=False)


CHECKS: dict[str, Callable[..., HistoryCheck]] = {
    "unique_across_periods": UniqueAcrossPeriods,
    "tradein_item_limit": TradeinItemLimit,
}


def make_checks(
    stream: StreamSpec, period: str, engine: Engine, rows_hint: int = 0
) -> list[HistoryCheck]:
    unknown = [c.name for c in stream.history_checks if c.name not in CHECKS]
    if unknown:
        raise KeyError(f"unknown history checks {unknown} (known: {sorted(CHECKS)})")
    return [CHECKS[c.name](c, stream, period, engine, rows_hint) for c in stream.history_checks]


def entity_history(
    engine: Engine, stream: StreamSpec, period: str, columns: list[str], months: int
) -> pd.DataFrame:
    """The loaded (core) rows of the ``months`` periods before ``period``: ``columns`` plus
    the period. The one place where plausibility rules (``plausibility.py``) read history,
    so a rule never sees the period it judges, even when that period is being reloaded."""
    from consumption_monitor.common.periods import Period

    core = schema.core(stream)
    first = str(Period.parse(period).shift(-months))
    wanted = ["period", *(c for c in dict.fromkeys(columns) if c != "period")]
    query = select(*[core.c[c] for c in wanted]).where(
        core.c.period >= first, core.c.period < period
    )
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.fetchall(), columns=wanted)
