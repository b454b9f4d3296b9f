"""Bulk row writes: COPY on PostgreSQL, executemany elsewhere.

Both run inside the caller's transaction, so a load that fails half way leaves nothing.

Frames (``write_frames``) are encoded for COPY a column at a time (issue 17): psycopg's
``Copy.write_row`` formats value by value in Python, which with building the row tuples
was ~10 s of a 1M-row load's ~19 s; encoding each column with C-level ``map``/``join``
and writing one text block per chunk takes a fraction of it. The text is what
``write_row`` sends for the same values (``tests/test_bulk_copy.py`` compares the two
tables), and a column of values it does not know how to encode goes the row way.

Chunks of plain columns (text, integers, floats, booleans; no value holding a tab, line
break, backslash or quote) are written by Arrow's CSV writer in COPY's text format (tab
delimited, ``\\N`` for null, nothing quoted; ``arrow_text``): the Python way took 3.4 s of
client CPU for 1M trade-in rows, and the whole 1M load went from 9.2–9.9 s to 5.5–5.9 s
(psql's COPY into an unindexed table then the three index builds: 5.5 s), the same core
rows. Any other chunk goes the Python way above, which stays the reference the test
compares both with.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, Engine, Table, insert

COPY_CHUNK = 10_000
COPY_STREAMS_ENV = "CM_LOAD_COPY_STREAMS"
DEFAULT_COPY_STREAMS = 2
NULL = "\\N"  # COPY text format's null
_SPECIAL = ("\\", "\t", "\n", "\r")  # what COPY text format escapes in a value
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# What Arrow's writer may emit as it is: tab-delimited, unquoted (a value holding a quote,
# tab or line break makes it fail), nulls as COPY's ``\N``
_ARROW_OPTIONS = pa_csv.WriteOptions(
    include_header=False, delimiter="\t", quoting_style="none", null_string=NULL
)
_ARROW_SPECIAL = (b"\\", b"\t", b"\n", b"\r", b'"')  # escaped or refused: the Python way


def write_rows(
    conn: Connection, table: Table | str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Append ``rows`` (tuples in ``columns`` order) to ``table``; returns the count.
    ``table`` may be a quoted, schema-qualified name on PostgreSQL (a partition's build
    table)."""
    if conn.dialect.name == "postgresql":
        return _copy(conn, _target(table), columns, rows)
    assert isinstance(table, Table), "a table name is for COPY on PostgreSQL only"
    count = 0
    stmt = insert(table)
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(dict(zip(columns, row, strict=True)))
        if len(chunk) >= COPY_CHUNK:
            conn.execute(stmt, chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        conn.execute(stmt, chunk)
        count += len(chunk)
    return count


def write_frames(
    conn: Connection, table: Table | str, columns: Sequence[str], frames: Iterable[pd.DataFrame]
) -> int:
    """Append the ``columns`` of each frame (missing ones as nulls) to ``table``; returns
    the count. On PostgreSQL one COPY, each frame encoded column by column; elsewhere the
    rows of :func:`frame_rows` through :func:`write_rows`."""
    if conn.dialect.name != "postgresql":
        return write_rows(conn, table, columns, (r for f in frames for r in frame_rows(f, columns)))
    raw = conn.connection.driver_connection  # psycopg 3 connection, same transaction
    count = 0
    statement = _copy_statement(_target(table), columns)
    with raw.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for frame in frames:
            count += _copy_frame(copy, frame, columns)
    return count


def _copy_frame(copy: Any, frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """Send one frame through an open COPY; returns its rows."""
    if frame.empty:
        return 0
    text = arrow_text(frame, columns)
    if text is None:
        text = copy_text(frame, columns)
    if text is None:  # a value the column encoders do not know: the row way
        for row in frame_rows(frame, columns):
            copy.write_row(row)
    else:
        copy.write(text)
    return len(frame)


def copy_streams() -> int:
    """COPY streams of a side-built load (:func:`copy_frames_side_by_side`), and so its
    index builds at once (``partitions.index_build_table``): ``CM_LOAD_COPY_STREAMS``,
    default 2 (one per core of the machine measured)."""
    raw = os.environ.get(COPY_STREAMS_ENV, "").strip()
    if not raw:
        return DEFAULT_COPY_STREAMS
    try:
        streams = int(raw)
    except ValueError:
        raise ValueError(f"{COPY_STREAMS_ENV} must be a whole number, not {raw!r}") from None
    return max(1, streams)


def copy_frames_side_by_side(
    engine: Engine, table: str, columns: Sequence[str], frames: Iterable[pd.DataFrame]
) -> int:
    """Append the frames to ``table`` through :func:`copy_streams` COPY streams at once, each
    on a connection of its own that commits when its stream ends; returns the count.

    For a table no reader sees yet (a month's build table, ``warehouse/partitions.py``):
    the rows are committed, so the caller drops the table if anything fails. Each stream
    takes the next frame from ``frames`` (read one at a time, under a lock) and encodes and
    sends it while the others do the same, so at most one frame per stream is held. Why
    (1M trade-in rows, 2 cores, 2026-12-01): PostgreSQL parses a COPY on one core; the
    month's rows took 2.3 s in one COPY and 1.45 s in two, the halves side by side. A
    stream that fails stops the others and its error is raised; the frames' own errors
    (reading the spool) likewise."""
    streams = copy_streams()
    source = iter(frames)
    lock = threading.Lock()
    failed = threading.Event()
    statement = _copy_statement(table, columns)

    def next_frame() -> pd.DataFrame | None:
        with lock:
            if failed.is_set():
                return None
            try:
                return next(source)
            except StopIteration:
                return None
            except BaseException:
                failed.set()
                raise

    def stream() -> int:
        count = 0
        try:
            with engine.begin() as conn:  # commits when the stream ends, else rolls back
                raw = conn.connection.driver_connection
                with (
                    raw.cursor() as cur,
                    cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy,
                ):
                    while (frame := next_frame()) is not None:
                        count += _copy_frame(copy, frame, columns)
                    if failed.is_set():
                        raise _Stopped
        except BaseException:
            failed.set()
            raise
        return count

    with ThreadPoolExecutor(streams, thread_name_prefix="copy") as pool:
        futures = [pool.submit(stream) for _ in range(streams)]
    errors = (f.exception() for f in futures)
    first = next((e for e in errors if e is not None and not isinstance(e, _Stopped)), None)
    if first is not None:
        raise first
    return sum(f.result() for f in futures)


class _Stopped(Exception):
    """A COPY stream ended because another one failed."""


def frame_rows(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple]:
    """The frame's rows as tuples in ``columns`` order, nulls as None (missing columns
    included)."""
    present = [c for c in columns if c in frame.columns]
    values = frame[present].astype(object).where(frame[present].notna(), None)
    if len(present) == len(columns):
        yield from values.itertuples(index=False, name=None)
        return
    at = {c: i for i, c in enumerate(present)}
    for row in values.itertuples(index=False, name=None):
        yield tuple(row[at[c]] if c in at else None for c in columns)


def arrow_text(frame: pd.DataFrame, columns: Sequence[str]) -> memoryview | None:
    """The frame as COPY text-format lines written by Arrow, or None when a column is not
    plain (a type other than text, integer, float or boolean, an infinity) or a text holds
    a character the text format escapes."""
    n = len(frame)
    arrays = []
    for name in columns:
        if name not in frame.columns:
            arrays.append(pa.nulls(n, pa.string()))
            continue
        array = _plain_array(frame[name])
        if array is None:
            return None
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    sink = pa.BufferOutputStream()
    try:
        pa_csv.write_csv(table, sink, _ARROW_OPTIONS)
    except pa.ArrowInvalid:  # a value the unquoted writer cannot carry
        return None
    return memoryview(sink.getvalue())


def _plain_array(series: pd.Series) -> pa.Array | None:
    if _has_infinity(series):
        return None
    try:
        array = pa.array(series, from_pandas=True)  # NaN and pd.NA as null
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return None if _holds_special(array) else array
    plain = pa.types.is_int64(kind) or pa.types.is_float64(kind) or pa.types.is_boolean(kind)
    return array if plain or pa.types.is_null(kind) else None


def _holds_special(array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a text array's UTF-8 bytes hold a tab, line break, backslash or quote (ASCII
    bytes never occur inside a multi-byte character). The data buffers are scanned whole: a
    slice's neighbours can only send a chunk the Python way, never let a value through.
    A regex over the values took 3.5× as long."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    for chunk in chunks:
        data = chunk.buffers()[2]
        raw = b"" if data is None else data.to_pybytes()
        if any(ch in raw for ch in _ARROW_SPECIAL):
            return True
    return False


def copy_text(frame: pd.DataFrame, columns: Sequence[str]) -> bytes | None:
    """The frame as COPY text-format lines (``columns`` in order, a missing column null),
    or None when a column holds values only ``write_row`` knows how to send."""
    n = len(frame)
    encoded: list[list[str]] = []
    for name in columns:
        if name not in frame.columns:
            encoded.append([NULL] * n)
            continue
        column = _encode(frame[name])
        if column is None:
            return None
        encoded.append(column)
    lines = "\n".join(map("\t".join, zip(*encoded, strict=True)))
    return (lines + "\n").encode("utf-8") if n else b""


def _encode(series: pd.Series) -> list[str] | None:
    dtype = series.dtype
    if dtype == np.float64:
        if _has_infinity(series):
            return None
        values = series.to_numpy()
        text = list(map(float.__repr__, values.tolist()))
        for i in np.flatnonzero(np.isnan(values)).tolist():
            text[i] = NULL
        return text
    if dtype == np.int64:
        return list(map(int.__repr__, series.to_numpy().tolist()))
    if isinstance(dtype, pd.Int64Dtype):
        return [NULL if v is None else str(v) for v in series.to_numpy(object, na_value=None)]
    if isinstance(dtype, pd.BooleanDtype) or dtype == np.bool_:
        flags = {True: "t", False: "f", None: NULL}
        return [flags[v] for v in series.to_numpy(object, na_value=None).tolist()]
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return _texts(series.to_numpy(object).tolist())
    return None


def _texts(values: list[Any]) -> list[str] | None:
    """Text values escaped for COPY, None, NaN and pd.NA as null; None when a value is
    neither text nor null (a date, a number in a text column): the caller takes the row
    way. Nulls are found by type, never by comparing with ``NULL`` (a text may be ``\\N``)."""
    others = [i for i, v in enumerate(values) if type(v) is not str]
    if not all(_is_null(values[i]) for i in others):
        return None
    out = values
    joined = "".join(values if not others else [v for v in values if type(v) is str])
    if any(ch in joined for ch in _SPECIAL):
        out = [v.translate(_ESCAPES) if type(v) is str else v for v in values]
    for i in others:
        out[i] = NULL
    return out


def _has_infinity(series: pd.Series) -> bool:
    """A float column holding an infinity: what ``write_row`` sends for it, the row way."""
    return series.dtype == np.float64 and bool(np.isinf(series.to_numpy()).any())


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _target(table: Table | str) -> str:
    return table if isinstance(table, str) else f'"{table.name}"'


def _copy_statement(target: str, columns: Sequence[str]) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    return f"COPY {target} ({cols}) FROM STDIN"


def _copy(
    conn: Connection, target: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    raw = conn.connection.driver_connection  # psycopg 3 connection, same transaction
    count = 0
    with raw.cursor() as cur, cur.copy(_copy_statement(target, columns)) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
