"""How long a string column's text may be, counted in characters, in words an operator
reads. One rule for the suite's reason (``validation``) and the loader's last check
(``warehouse``), so SQLite, which stores any text, and PostgreSQL, whose varchar(n) counts
characters, end alike.

The limit is the spec's ``ColumnSpec.max_length`` (the warehouse column is
``String(max_length)``); a value's length is that of the typed text (``frames.parse_string``
strips it), so 128 Chinese characters fit a 128-character column whatever their bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from consumption_monitor.feeds.frames import parse_string
from consumption_monitor.feeds.spec import ColumnSpec, StreamSpec


class TextTooLong(ValueError):
    """A text value longer than its column allows (what PostgreSQL's COPY would refuse)."""


def column_title(column: ColumnSpec) -> str:
    """「单位名称」(enterprise_name): the label or description an operator knows, and the id."""
    title = column.label or column.description.split("（")[0] or column.name
    return f"「{title}」({column.name})"


def length_reason(column: ColumnSpec, length: int) -> str:
    """E.g. 列「单位名称」(enterprise_name) 长 129 个字符，超过上限 128 个字符."""
    return f"列{column_title(column)} 长 {length} 个字符，超过上限 {column.max_length} 个字符"


def text_length(value: Any) -> int | None:
    """Characters of ``value`` as the frame types it (None for a missing or non-text one)."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    try:
        return len(parse_string(value))
    except ValueError:
        return None


def raw_length_reasons(stream: StreamSpec, raw: dict[str, Any]) -> list[str]:
    """The length reasons of one record as received (for a quarantined row's listing)."""
    out = []
    for column in stream.columns:
        length = text_length(raw.get(column.name)) if column.max_length else None
        if length is not None and length > (column.max_length or 0):
            out.append(length_reason(column, length))
    return out


def _longest(values: pd.Series) -> float:
    """The longest text's characters: the common case, every value fits, found at C speed.
    On an Arrow text column ``Series.str.len`` is Arrow's (8× faster than the walk below on
    a 50k-row trade-in chunk); on an object column it costs several times more than it."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return values.str.len().max()
    try:
        return max(map(len, filter(None, values.to_numpy(dtype=object))), default=0)
    except TypeError:  # a NaN or a non-text value: let pandas skip it
        return values.str.len().max()


def over_long(stream: StreamSpec, frame: pd.DataFrame) -> Iterator[tuple[ColumnSpec, pd.Series]]:
    """Per string column of ``frame``: the lengths of the values over its limit (by index)."""
    for column in stream.columns:
        if not column.max_length or column.name not in frame.columns:
            continue
        values = frame[column.name]
        if values.empty or not (
            values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
        ):
            continue
        if _longest(values) <= column.max_length:
            continue
        lengths = values.str.len()  # characters; NaN for nulls
        bad = lengths[lengths > column.max_length]
        if not bad.empty:
            yield column, bad


def check_lengths(stream: StreamSpec, frame: pd.DataFrame, row_field: str | None = None) -> None:
    """Raise ``TextTooLong`` naming the first over-long value's column, limit and length
    (and its row, from ``row_field``); never the text itself."""
    for column, bad in over_long(stream, frame):
        index = bad.index[0]
        where = f"第 {frame.at[index, row_field]} 行 " if row_field in frame.columns else ""
        raise TextTooLong(
            f"{stream.name} {where}{length_reason(column, int(bad.iloc[0]))}"
            f"（共 {len(bad)} 行超长）"
        )
