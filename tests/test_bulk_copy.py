"""The column-wise COPY encoder (``warehouse/bulk.write_frames``) writes the very rows that
psycopg's ``write_row`` writes for the same frames: two tables loaded the two ways have the
same digest, on values chosen to break a text encoder (tabs, newlines, backslashes, the
text ``\\N``, Chinese, nulls of every dtype, long decimals, dates)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from consumption_monitor.warehouse.bulk import (
    arrow_text,
    copy_text,
    frame_rows,
    write_frames,
    write_rows,
)

pytestmark = pytest.mark.postgres

COLUMNS = ["batch_id", "name", "day", "price", "items", "valid", "note"]
DDL = """create table {t} (batch_id varchar(20), name varchar(64), day date,
    price numeric(18, 4), items bigint, valid boolean, note text)"""


def _frame() -> pd.DataFrame:
    names = ["普通", "tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "", None]
    n = len(names)
    return pd.DataFrame(
        {
            "name": pd.array(names, dtype=object),
            "day": pd.array(["2025-03-01", None, "2025-03-31", *["2025-03-15"] * (n - 3)], object),
            "price": np.array(
                [7183.01, 0.1 + 0.2, 1e13, 123456789.1234, -5.5, 0.0, 1e-3, math.nan]
            ),
            "items": pd.array([1, None, 3, 2**40, 0, -1, 7, 8], dtype="Int64"),
            "valid": pd.array([True, False, None, True, False, True, None, False], dtype="boolean"),
            "note": pd.array(
                [float("nan"), "x", pd.NA, "尾\\t", "a\tb\\n", "q\"'", "ok", "\\"], object
            ),
        }
    ).assign(batch_id="b1")


def _digest(conn, table: str) -> list[tuple]:
    return conn.execute(text(f"select * from {table} order by name nulls first, note")).all()


def test_column_copy_writes_what_write_row_writes(pg_database: str) -> None:
    engine = create_engine(pg_database)
    frame = _frame()
    assert copy_text(frame, COLUMNS) is not None  # the column way is taken, not the fallback
    with engine.begin() as conn:
        conn.execute(text(DDL.format(t="by_row")))
        conn.execute(text(DDL.format(t="by_column")))
        rows = write_rows(conn, "by_row", COLUMNS, frame_rows(frame, COLUMNS))
        columns = write_frames(conn, "by_column", COLUMNS, [frame.iloc[:3], frame.iloc[3:]])
        assert rows == columns == len(frame)
        by_row, by_column = _digest(conn, "by_row"), _digest(conn, "by_column")
        assert by_row == by_column
        assert ("b1", "\\N") in {(r[0], r[1]) for r in by_column}  # text, not a null
        assert sum(r[1] is None for r in by_column) == 1
        md5 = "select md5(string_agg(t::text, '|' order by t::text)) from {} t"
        assert (
            conn.execute(text(md5.format("by_row"))).scalar()
            == conn.execute(text(md5.format("by_column"))).scalar()
        )
    engine.dispose()


def test_values_the_encoder_does_not_know_take_the_row_way(pg_database: str) -> None:
    import datetime

    engine = create_engine(pg_database)
    frame = _frame()
    frame["day"] = pd.array([datetime.date(2025, 3, 1)] * len(frame), dtype=object)
    frame["price"] = frame["price"].where(frame["price"] != 1e13, math.inf)
    assert copy_text(frame, COLUMNS) is None
    with engine.begin() as conn:
        conn.execute(text(DDL.format(t="fallback").replace("numeric(18, 4)", "float8")))
        assert write_frames(conn, "fallback", COLUMNS, [frame]) == len(frame)
        days = conn.execute(text("select distinct day from fallback")).scalars().all()
        assert days == [datetime.date(2025, 3, 1)]
        assert conn.execute(text("select count(*) from fallback where price = 'infinity'")).scalar()
    engine.dispose()


def test_missing_columns_load_as_nulls(pg_database: str) -> None:
    engine = create_engine(pg_database)
    frame = _frame().drop(columns=["note", "valid"])
    with engine.begin() as conn:
        conn.execute(text(DDL.format(t="partial")))
        write_frames(conn, "partial", COLUMNS, [frame])
        nulls = conn.execute(
            text("select count(*) from partial where note is null and valid is null")
        )
        assert nulls.scalar() == len(frame)
    engine.dispose()


def _plain_frame() -> pd.DataFrame:
    """Values Arrow's writer takes: Chinese, an empty text, nulls of every dtype, Arrow and
    object text columns, floats that print differently in Arrow and Python."""
    names = ["普通", "", None, "攀枝花市西区某某电器有限公司", "a b", "x;y,z", "'single'", "末"]
    n = len(names)
    return pd.DataFrame(
        {
            "name": pd.array(names, dtype="str"),
            "day": pd.array(["2025-03-01", None, "2025-03-31", *["2025-03-15"] * (n - 3)], object),
            "price": np.array(
                [7183.01, 0.1 + 0.2, 1e13, 123456789.1234, -0.0, 5e-5, 1e-3, math.nan]
            ),
            "items": pd.array([1, None, 3, 2**40, 0, -1, 7, 8], dtype="Int64"),
            "valid": pd.array([True, False, None, True, False, True, None, False], dtype="boolean"),
        }
    ).assign(batch_id="b1")


@pytest.mark.parametrize("special", [None, "\t", "\n", "\r", "\\", '"', "\\N"])
def test_arrow_text_writes_what_write_row_writes(pg_database: str, special: str | None) -> None:
    """The plain frame goes Arrow's way (and a text holding a character COPY escapes or
    Arrow refuses goes the Python way); either way the table equals the row way's."""
    plain = _plain_frame()
    frame = pd.concat([plain.iloc[:4], plain.iloc[4:]], ignore_index=True)  # chunked columns
    if special is not None:
        frame.loc[3, "name"] = f"前{special}后"
    assert (arrow_text(frame, COLUMNS) is None) == (special is not None)
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(DDL.format(t="by_row")))
        conn.execute(text(DDL.format(t="by_arrow")))
        write_rows(conn, "by_row", COLUMNS, frame_rows(frame, COLUMNS))  # no note: all null
        write_frames(conn, "by_arrow", COLUMNS, [frame.iloc[:5], frame.iloc[5:]])
        assert _digest(conn, "by_row") == _digest(conn, "by_arrow")
        assert conn.execute(text("select count(*) from by_arrow where name = ''")).scalar() == 1
        assert conn.execute(text("select count(*) from by_arrow where name is null")).scalar() == 1
    engine.dispose()


def test_arrow_text_leaves_other_types_to_python() -> None:
    import datetime

    frame = _plain_frame()
    assert arrow_text(frame, COLUMNS) is not None
    dated = frame.assign(day=pd.array([datetime.date(2025, 3, 1)] * len(frame), dtype=object))
    assert arrow_text(dated, COLUMNS) is None
    infinite = frame.assign(price=frame["price"].where(frame["price"] != 1e13, math.inf))
    assert arrow_text(infinite, COLUMNS) is None
    tabbed = frame.assign(name=frame["name"].replace("末", "末\t"))
    assert arrow_text(pd.concat([frame, tabbed], ignore_index=True), COLUMNS) is None  # chunked
    mixed = frame.assign(day=pd.array(["2025-03-01", 5, *[None] * (len(frame) - 2)], object))
    assert arrow_text(mixed, COLUMNS) is None
