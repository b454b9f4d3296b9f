"""Records to typed DataFrames, keeping what could not be typed visible to the checks.

Typing never drops a row. A value that cannot be converted to its declared type becomes
null in the typed column and the column's name is listed in ``_unparseable`` for that row,
so a Great Expectations check can quarantine the row with its raw values.

Text and dates are pandas' ``str`` dtype on Arrow (pyarrow is a pinned dependency; nulls
are NaN), not Python objects (issue 17): GX's null tests and row takes on object columns
were a fifth of a 1M-row trade-in validation; on Arrow its CPU fell from 45.6 s to 35.4 s
with the same outcomes and quarantine. Code that walks a column value by value takes
``Series.tolist()`` first (iterating an Arrow column through pandas is slower still).

Three ways to type a column, the first that applies wins, all with the same result
(``tests/test_frames.py`` compares them on mixed values): Arrow converts the column's
values (``_arrow_column``: what JSON delivers already typed, checked in Arrow kernels),
else one NumPy step (``_whole_column``), else value by value (``_typed_column``). Measured
on a 50,000-row trade-in chunk: ~237 ms through the last two, ~185 ms with Arrow (what is
left is reading each field out of the records' dicts and Arrow's own conversion). The
extract's worker skips the records altogether where it can: :func:`pages_frame` has Arrow's
JSON reader parse archived pages straight into the columns' types, and declines (the
records way then) whatever could come out differently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from consumption_monitor.feeds.spec import (
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    INTEGER_BITS,
    ColumnSpec,
    FeedSpec,
    StreamSpec,
)

ROW = "_row"  # 0-based position of the record in the batch's stream
UNPARSEABLE = "_unparseable"
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９．－＋", "0123456789.-+")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def parse_decimal(value: Any) -> float | None:
    """A JSON number or a plain numeric string; anything else raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    if isinstance(value, int | float):
        return _finite(value)
    text = str(value).strip().translate(_FULLWIDTH)
    if not _NUMBER_RE.match(text):
        raise ValueError(f"{value!r} is not a number")
    return _finite(text)


# decimals the warehouse's NUMERIC holds: below 10^14 (a float below it rounds below it)
DECIMAL_LIMIT = 10.0 ** (DECIMAL_PRECISION - DECIMAL_SCALE)


def _finite(value: int | float | str) -> float:
    """float(value), refusing infinities and overflows (1e999, 10**400) as not a number and
    what the warehouse's decimal columns cannot hold as out of range."""
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    if abs(number) >= DECIMAL_LIMIT:
        raise ValueError(f"{value!r} is out of the decimal columns' range (below 10^14)")
    return number


# What the warehouse's integer columns hold (counts of people, jobs, orders): a larger
# value is unparseable in its row, not a failed load
_INT_MIN, _INT_MAX = -(2 ** (INTEGER_BITS - 1)), 2 ** (INTEGER_BITS - 1) - 1


def _in_range(low: int, high: int) -> bool:
    return low >= _INT_MIN and high <= _INT_MAX


def parse_integer(value: Any) -> int:
    """A whole number the warehouse's integer columns hold (a JSON integer as it is; text
    and floats through :func:`parse_decimal`); anything else raises ValueError."""
    if type(value) is int:
        number = value
    else:
        decimal = parse_decimal(value)
        if decimal is None or not float(decimal).is_integer():
            raise ValueError(f"{value!r} is not an integer")
        number = int(decimal)
    if not _in_range(number, number):
        raise ValueError(f"{value!r} is out of the integer columns' range (32 bits)")
    return number


def parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "是"}:
        return True
    if text in {"false", "0", "no", "否"}:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def parse_date(value: Any) -> str:
    """ISO dates only (YYYY-MM-DD), kept as text so every database compares them alike."""
    text = str(value).strip()
    pd.Timestamp(text)  # raises on nonsense
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        raise ValueError(f"{value!r} is not an ISO date")
    return text


# The one character PostgreSQL's text cannot hold (COPY and INSERT refuse the whole load):
# a text with it is unparseable in its row, not silently changed
NUL = "\x00"


def parse_string(value: Any) -> str:
    if isinstance(value, dict | list):
        raise ValueError("nested value where text was expected")
    text = str(value).strip()
    if NUL in text:
        raise ValueError("text holds a NUL character (U+0000), which the warehouse cannot store")
    return text


PARSERS = {
    "decimal": parse_decimal,
    "integer": parse_integer,
    "boolean": parse_boolean,
    "date": parse_date,
    "string": parse_string,
}
DTYPES = {
    "decimal": "float64",
    "integer": "Int64",
    "boolean": "boolean",
    "date": "str",
    "string": "str",
}


_SLOW = object()  # a fast path's "ask the full parser"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _fast_date(value: Any) -> Any:
    if type(value) is str and _ISO_DATE.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            return _SLOW
        return value
    return _SLOW


# What JSON already delivers typed (the vast majority of values at transaction scale) is
# taken as is; anything else goes through the full parser, so the results are the same.
FAST_PATHS = {
    "string": lambda v: v.strip() if type(v) is str and NUL not in v else _SLOW,
    "decimal": lambda v: (
        float(v) if type(v) in (float, int) and -DECIMAL_LIMIT < v < DECIMAL_LIMIT else _SLOW
    ),
    "integer": lambda v: v if type(v) is int and _INT_MIN <= v <= _INT_MAX else _SLOW,
    "boolean": lambda v: v if type(v) is bool else _SLOW,
    "date": _fast_date,
}


def _typed_column(column: ColumnSpec, raw: list[Any]) -> tuple[list[Any], list[bool]]:
    parse = PARSERS[column.type]
    fast = FAST_PATHS[column.type]
    values: list[Any] = []
    failed: list[bool] = []
    for value in raw:
        if value is None or value == "" or (type(value) is float and math.isnan(value)):
            values.append(None)
            failed.append(False)
            continue
        typed = fast(value)
        if typed is not _SLOW:
            values.append(typed)
            failed.append(False)
            continue
        try:
            values.append(parse(value))
            failed.append(False)
        except (ValueError, TypeError):
            values.append(None)
            failed.append(True)
    return values, failed


def _numbers(raw: list[Any], dtype: str) -> np.ndarray | None:
    try:
        return np.array(raw, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        return None


def _whole_column(kind: str, raw: list[Any]) -> Any:
    """The typed column in one vectorised step when every value is already what JSON
    delivers for the type (no nulls, no text to parse), else None for the per-value path.

    Why: at transaction scale the per-value loop of :func:`_typed_column` was the largest
    cost of validation; the results are the same as that loop's, value for value.
    """
    types = set(map(type, raw))
    if kind == "string":
        if types == {str} and "" not in raw and NUL not in "".join(raw):
            return list(map(str.strip, raw))
    elif kind == "decimal":
        if types and types <= {float, int}:
            numbers = _numbers(raw, "float64")
            if numbers is not None and (np.abs(numbers) < DECIMAL_LIMIT).all():
                return numbers
    elif kind == "integer":
        if types == {int}:
            numbers = _numbers(raw, "int64")
            if numbers is not None and _in_range(int(numbers.min()), int(numbers.max())):
                return numbers
    elif kind == "boolean":
        if types == {bool}:
            return np.array(raw, dtype=bool)
    # a month holds a few dozen distinct dates: each is checked once
    elif kind == "date" and types == {str} and all(_fast_date(v) is not _SLOW for v in set(raw)):
        return raw
    return None


# What ``str.strip()`` removes (Python's whitespace, U+3000 the last of it): trimming these
# in Arrow is the per-value path's strip
_SPACES = "".join(sorted({chr(c) for c in range(0x3001) if chr(c).isspace()}))
_CONVERSION_ERRORS = (ValueError, TypeError, OverflowError, pa.ArrowException)


def _masked(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """NumPy values (nulls as zero/False) and the null mask, for pandas' masked arrays."""
    mask = values.is_null().to_numpy(zero_copy_only=False)
    return values.fill_null(False if pa.types.is_boolean(values.type) else 0).to_numpy(
        zero_copy_only=False
    ), mask


def _arrow_column(kind: str, raw: list[Any]) -> Any:
    """The typed column converted by Arrow when every value is null or what JSON delivers
    for the type (``""`` null for text and dates, text stripped, as on the per-value path),
    else None. Arrow infers one type for the values or refuses; what it would convert
    differently from the per-value path is refused here: booleans among numbers, numbers
    beyond the warehouse's columns, integers a double cannot hold, text with a NUL, dates
    that are not ISO calendar days, and columns with no value at all."""
    try:
        values = pa.array(raw)
    except _CONVERSION_ERRORS:
        return None
    if kind == "decimal" and pa.types.is_floating(values.type) and bool in set(map(type, raw)):
        return None  # Arrow reads True as 1.0; the per-value path refuses it
    return _typed_arrow(kind, values)


def _typed_arrow(kind: str, values: pa.Array) -> Any:
    """:func:`_arrow_column` of values Arrow already holds."""
    try:
        if kind == "decimal" and (
            pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
        ):
            numbers = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
            return None if (np.abs(numbers) >= DECIMAL_LIMIT).any() else numbers
        if kind == "integer" and pa.types.is_integer(values.type):
            bounds = pc.min_max(values)
            if not _in_range(bounds["min"].as_py(), bounds["max"].as_py()):
                return None
            return pd.arrays.IntegerArray(*_masked(values.cast(pa.int64())))
    except _CONVERSION_ERRORS:
        return None
    if kind == "boolean" and pa.types.is_boolean(values.type):
        return pd.arrays.BooleanArray(*_masked(values))
    if kind in ("string", "date") and pa.types.is_string(values.type):
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        if kind == "string":
            if pc.any(pc.match_substring(values, NUL)).as_py():
                return None
            values = pc.utf8_trim(values, characters=_SPACES)
        elif any(_fast_date(day) is _SLOW for day in pc.unique(values).drop_null().to_pylist()):
            return None
        return pd.array(values.cast(pa.large_string()), dtype="str")
    return None


# the Arrow type JSON's reader parses each kind of column into (explicit: a value of
# another JSON type fails the read, and the page takes the per-record way)
_JSON_TYPES = {
    "decimal": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.string(),
    "string": pa.string(),
}
_JSON_BLOCK = 1 << 22  # bytes the reader parses at a time (~2.0 ms a page; 2.4-2.8 with 1 GiB)


def pages_frame(stream: StreamSpec, bodies: list[bytes], first_row: int = 0) -> pd.DataFrame | None:
    """:func:`to_frame` of the records of these archived JSON pages (one document each),
    parsed by Arrow's JSON reader straight into the columns' types; None when that could
    differ from decoding the pages and typing the records (the caller does that then): a
    value of another JSON type than its column's (the reader refuses it), a record that
    is not an object, a column null in every record (absent from all of them, or not: only
    the records tell), a value :func:`_arrow_column` would refuse, a decimal ``-0`` (JSON's
    integer ``-0`` is 0 for the decoder, -0.0 for the reader), no record at all.

    Why: decoding a 50,000-row trade-in chunk into dicts, reading each field out of them
    and converting those to Arrow took 5.5-6.7 ms of CPU a page on the extract's worker;
    this takes 3.4-4.8 ms (the reader 2.0-2.8 ms of it), and a 1M-row stage run's CPU fell
    by ~7 % (2026-12-01). The reader's doubles are correctly rounded: the same as the
    decoder's on 300,000 random doubles, bit patterns included. Equal frames on random
    pages of awkward JSON: ``tests/test_frames.py``."""
    if not bodies or any(b"\n" in body for body in bodies):
        return None
    fields = []
    for column in stream.columns:
        if column.type not in _JSON_TYPES:
            return None
        fields.append(pa.field(column.name, _JSON_TYPES[column.type]))
    schema = pa.schema([pa.field(stream.records_field, pa.list_(pa.struct(fields)))])
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pa_json.read_json(
            pa.BufferReader(b"\n".join(bodies)),
            pa_json.ReadOptions(
                use_threads=False, block_size=max(_JSON_BLOCK, 1 + max(map(len, bodies)))
            ),
            options,
        )
    except _CONVERSION_ERRORS:
        return None
    pages = table.column(stream.records_field).combine_chunks()
    if len(pages) != len(bodies) or pages.null_count:
        return None
    records = pages.flatten()
    n = len(records)
    if not n or records.null_count:
        return None
    data: dict[str, Any] = {ROW: pd.array(np.arange(first_row, first_row + n), dtype="int64")}
    for column, values in zip(stream.columns, records.flatten(), strict=True):
        if values.null_count == n:
            return None
        typed = _typed_arrow(column.type, values)
        if typed is None:
            return None
        if column.type == "decimal" and (np.signbit(typed) & (typed == 0)).any():
            return None
        data[column.name] = pd.array(typed, dtype=DTYPES[column.type])
    data[UNPARSEABLE] = pd.array([None] * n, dtype=object)
    return pd.DataFrame(data)


def _column_values(records: list[dict[str, Any]], name: str) -> list[Any] | None:
    """The field's value in each record (None where a record lacks it), or None when no
    record has the field."""
    try:  # every record has the field: the common case, at C speed
        return list(map(itemgetter(name), records))
    except KeyError:
        if not any(name in record for record in records):
            return None
        return [record.get(name) for record in records]


def to_frame(
    stream: StreamSpec, records: list[dict[str, Any]], first_row: int = 0, *, arrow: bool = True
) -> pd.DataFrame:
    """Typed frame of the spec's columns present in the records, plus ``_row`` and
    ``_unparseable``. Columns absent from every record stay absent (a check reports it).

    An empty stream (a month without job fairs) has every column: with no record, no
    column can be said to be missing, and the suite must see the declared shape.

    ``arrow=False`` skips the Arrow conversion (the same frame, for comparisons)."""
    n = len(records)
    data: dict[str, Any] = {ROW: pd.array(np.arange(first_row, first_row + n), dtype="int64")}
    problems: dict[int, list[str]] = {}  # position in this chunk -> columns not typed
    for column in stream.columns:
        name = column.name
        raw = _column_values(records, name) if records else []
        if raw is None:
            continue
        values = _arrow_column(column.type, raw) if raw and arrow else None
        if values is None and raw:
            values = _whole_column(column.type, raw)
        if values is None:
            values, failed = _typed_column(column, raw)
            for i, bad in enumerate(failed):
                if bad:
                    problems.setdefault(i, []).append(name)
        data[name] = pd.array(values, dtype=DTYPES[column.type])
    unparseable = [None] * n
    for i, names in problems.items():
        unparseable[i] = ",".join(names)
    data[UNPARSEABLE] = pd.array(unparseable, dtype=object)
    return pd.DataFrame(data)


def joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames one after another, renumbered from 0, each Arrow-backed column in one
    contiguous array.

    Why: ``pd.concat`` joins Arrow columns as chunked arrays without a copy, but GX filters
    the whole frame once per expectation (``df[df[column].notnull()]``), and taking rows
    from a chunked array costs more than from one array: the trade-in suite's run on four
    joined 50,000-row chunks took 0.79-0.97 s chunked and 0.61-0.67 s contiguous, for
    ~15 ms of joining (2026-12-01)."""
    frame = pd.concat(frames, ignore_index=True)
    for name in frame.columns:
        array = frame[name].array
        chunked = getattr(array, "_pa_array", None)
        if isinstance(chunked, pa.ChunkedArray) and chunked.num_chunks > 1:
            whole = pa.chunked_array([chunked.combine_chunks()], type=chunked.type)
            frame[name] = pd.Series(type(array)(whole, **_dtype_of(array)), index=frame.index)
    return frame


def _dtype_of(array: Any) -> dict[str, Any]:
    """The keyword an Arrow-backed pandas array's constructor takes to keep its dtype."""
    return {"dtype": array.dtype} if isinstance(array.dtype, pd.StringDtype) else {}


def raw_values(record: dict[str, Any]) -> str:
    """The record as received, for the quarantine table."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)


def iter_frames(feed: FeedSpec, batch_dir: Path, stream: StreamSpec) -> Iterator[pd.DataFrame]:
    """Typed frames of a stream's archived records, ``stream.chunk_rows`` at a time, with
    ``_row`` numbered across the whole batch (what quarantine and load refer to)."""
    from consumption_monitor.feeds.engine import iter_chunks

    for first, records in iter_chunks(feed, batch_dir, stream.name, stream.chunk_rows or 10**9):
        yield to_frame(stream, records, first)
