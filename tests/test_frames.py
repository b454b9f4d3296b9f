"""Typing records into DataFrames: never drop a row, flag what could not be typed."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from cm_devtools.sample_server import retail_data
from consumption_monitor.common.periods import Period
from consumption_monitor.feeds.frames import (
    ROW,
    UNPARSEABLE,
    joined,
    pages_frame,
    parse_decimal,
    raw_values,
    to_frame,
)
from consumption_monitor.feeds.spec import ColumnSpec, StreamSpec, load_feed

STREAM = StreamSpec(
    name="things",
    table="things",
    path="/things",
    keys=("code",),
    columns=(
        ColumnSpec("code", "string", required=True),
        ColumnSpec("amount", "decimal", unit="万元"),
        ColumnSpec("count", "integer"),
        ColumnSpec("flag", "boolean"),
        ColumnSpec("day", "date"),
        ColumnSpec("note", "string"),
    ),
)


def frame(*records: dict[str, Any]) -> pd.DataFrame:
    return to_frame(STREAM, list(records))


def flags(df: pd.DataFrame) -> list[str | None]:
    """The ``_unparseable`` cells, with missing ones as None (pandas may hold them as NaN)."""
    return [None if pd.isna(x) else x for x in df[UNPARSEABLE]]


def amounts(*values: Any) -> tuple[list[Any], list[Any]]:
    """The typed amounts and the ``_unparseable`` cells for one record per value."""
    df = frame(*({"code": f"c{i}", "amount": v} for i, v in enumerate(values)))
    typed = [None if pd.isna(x) else float(x) for x in df["amount"]]
    return typed, flags(df)


def test_json_numbers_and_numeric_strings_become_floats() -> None:
    typed, problems = amounts(12, 12.5, -3, 0, "12.5", " 42 ", "-0.5", "+7", "1e3", ".5", "3.")
    assert typed == [12.0, 12.5, -3.0, 0.0, 12.5, 42.0, -0.5, 7.0, 1000.0, 0.5, 3.0]
    assert problems == [None] * 11


def test_full_width_digits_are_read() -> None:
    typed, problems = amounts("１２３．５", "－５", "１２３")
    assert typed == [123.5, -5.0, 123.0]
    assert problems == [None, None, None]


@pytest.mark.parametrize("bad", ["12,3x4", "1,234", "12万", "abc", "1.2.3", "--1", "NaN", "inf"])
def test_non_numbers_become_null_and_are_listed(bad: str) -> None:
    typed, problems = amounts(bad)
    assert typed == [None]
    assert problems == ["amount"]


def test_the_server_non_numeric_defect_is_flagged_on_its_row() -> None:
    above = load_feed("retail_monthly").stream("above_quota")
    rows = retail_data.inject_defects(
        retail_data.above_quota_rows(Period(2025, 3)), ["non_numeric"]
    )
    bad = [i for i, row in enumerate(rows) if retail_data.NON_NUMERIC_VALUE in row.values()]
    assert len(bad) == 1
    df = to_frame(above, rows)
    assert len(df) == len(rows)
    flagged = df[df[UNPARSEABLE].notna()]
    assert list(flagged[ROW]) == bad
    assert flags(flagged) == ["value_month"]
    assert pd.isna(df.loc[bad[0], "value_month"])
    assert not pd.isna(df.loc[bad[0], "value_ytd"])


@pytest.mark.parametrize("flag", [True, False])
def test_booleans_are_not_numbers(flag: bool) -> None:
    typed, problems = amounts(flag)
    assert typed == [None]
    assert problems == ["amount"]
    with pytest.raises(ValueError):
        parse_decimal(flag)


def test_booleans_are_not_integers_either() -> None:
    df = frame({"code": "a", "count": True}, {"code": "b", "count": 3})
    assert pd.isna(df.loc[0, "count"])
    assert df.loc[1, "count"] == 3
    assert flags(df) == ["count", None]


def test_non_finite_json_floats_are_unparseable() -> None:
    typed, problems = amounts(math.inf, -math.inf)
    assert typed == [None, None]
    assert problems == ["amount", "amount"]


def test_missing_values_are_null_but_not_unparseable() -> None:
    df = frame(
        {"code": "a", "amount": None},
        {"code": "b", "amount": ""},
        {"code": "c", "amount": math.nan},
        {"code": "d"},  # key absent from this record only
        {"code": "e", "amount": 1},
    )
    assert df["amount"].isna().tolist() == [True, True, True, True, False]
    assert df[UNPARSEABLE].isna().all()


def test_columns_absent_from_every_record_stay_absent() -> None:
    df = frame({"code": "a", "amount": 1, "extra": "not in the spec"})
    assert list(df.columns) == [ROW, "code", "amount", UNPARSEABLE]
    assert "count" not in df
    assert "extra" not in df


def test_dtypes() -> None:
    df = frame(
        {"code": "a", "amount": "1.5", "count": "3", "flag": "是", "day": "2025-03-01", "note": 5},
        {"code": "b", "amount": 2, "count": 4.0, "flag": False, "day": None, "note": None},
    )
    assert df["amount"].dtype == "float64"
    assert str(df["count"].dtype) == "Int64"
    assert str(df["flag"].dtype) == "boolean"
    # text and dates: pandas' str dtype on Arrow (issue 17), nulls as NaN
    assert str(df["day"].dtype) == "str" and df["day"].array.dtype.storage == "pyarrow"
    assert str(df["note"].dtype) == "str"
    assert df.loc[0, "note"] == "5"
    assert df["note"].isna().tolist() == [False, True]
    assert list(df["count"]) == [3, 4]
    assert list(df["flag"]) == [True, False]
    assert df[UNPARSEABLE].isna().all()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("count", "3.5"),
        ("count", "three"),
        ("flag", "maybe"),
        ("day", "2025/03/01"),
        ("day", "2025-02-30"),
        ("day", "soon"),
        ("note", {"nested": 1}),
        ("note", [1, 2]),
    ],
)
def test_other_types_flag_what_they_cannot_read(column: str, value: Any) -> None:
    df = frame({"code": "a", column: value}, {"code": "b"})
    assert pd.isna(df.loc[0, column])
    assert flags(df) == [column, None]


def test_several_bad_columns_are_all_listed_in_spec_order() -> None:
    df = frame({"day": "x", "count": "y", "code": "a", "amount": "12,3x4"})
    assert df.loc[0, UNPARSEABLE] == "amount,count,day"


def test_row_positions_and_no_row_dropped() -> None:
    records = [
        {"code": "a", "amount": 1},
        {"code": "a", "amount": 1},  # exact duplicate: kept, a check reports it
        {"code": None, "amount": "bad"},
        {},
        {"code": "e", "amount": "１２"},
    ]
    df = frame(*records)
    assert len(df) == len(records)
    assert list(df[ROW]) == [0, 1, 2, 3, 4]
    assert flags(df) == [None, None, "amount", None, None]
    assert df["code"].tolist()[:2] == ["a", "a"]
    assert pd.isna(df.loc[2, "code"])


def test_no_records_give_an_empty_frame_of_the_declared_shape() -> None:
    """A month without events is not a month with missing columns."""
    df = to_frame(STREAM, [])
    assert len(df) == 0
    assert list(df.columns) == [ROW, *STREAM.column_names, UNPARSEABLE]
    for column in STREAM.columns:
        assert str(df[column.name].dtype) == {
            "decimal": "float64",
            "integer": "Int64",
            "boolean": "boolean",
        }.get(column.type, "str")


def test_raw_values_keep_the_record_as_received() -> None:
    text = raw_values({"b": "１２", "a": "12,3x4"})
    assert text == '{"a": "12,3x4", "b": "１２"}'


# Infinite or overflowing numbers are unparseable values, never a crash or an inf.


def test_overflowing_numeric_string_is_unparseable() -> None:
    typed, problems = amounts("1e999")
    assert typed == [None]
    assert problems == ["amount"]


def test_huge_json_integer_does_not_abort_typing() -> None:
    df = frame({"code": "a", "amount": 10**400}, {"code": "b", "amount": 1})
    assert len(df) == 2
    assert flags(df) == ["amount", None]


def test_whole_column_fast_path_types_like_the_per_value_path() -> None:
    """Clean columns are typed in one step; the same rows typed beside a row that sends
    every column down the per-value path come out identical, dtypes included."""
    clean = [
        {"code": f" C{i} ", "amount": [12.5, 3, 9.99e13][i % 3], "count": i, "flag": i % 2 == 0,
         "day": f"2025-03-{1 + i % 28:02d}", "note": "备注"}
        for i in range(30)
    ]  # fmt: skip
    messy = {"code": None, "amount": "1,0", "count": "x", "flag": "maybe", "day": "", "note": 7}
    fast = frame(*clean)
    slow = frame(*clean, messy).iloc[: len(clean)]
    pd.testing.assert_frame_equal(fast.drop(columns=UNPARSEABLE), slow.drop(columns=UNPARSEABLE))
    assert fast["code"].tolist()[:2] == ["C0", "C1"]
    assert fast[UNPARSEABLE].isna().all() and slow[UNPARSEABLE].isna().all()


# Values a sender may put in any column: JSON's types, text that needs stripping (Python's
# whitespace, not only ASCII), numbers Arrow could convert differently (booleans, huge or
# imprecise integers, infinities, NaN from the standard library's parser), dates that are
# not calendar days, nested values.
_POOL: list[Any] = [
    None, "", "  ", "x", " x ", "\u3000名称", "名称\x1c", "a\u00a0", "2025-03-01",
    " 2025-03-01", "2025-02-30", "2025-3-1", "12.5", "1,0", "true", "是", "a\x00b", "\x00",
    0, 1, -7, 2**31, 2**53 + 1, 2**63, 10**400, 0.5, 1e16, 10**14, -1e14, 99999999999999.98,
    -0.0, float("nan"), float("inf"),
    True, False, {"a": 1}, [1],
]  # fmt: skip


def test_arrow_typing_gives_the_per_value_paths_frame() -> None:
    """Every column typed by Arrow comes out as the NumPy and per-value paths type it:
    the same values, dtypes and ``_unparseable`` flags, for random mixes of awkward values
    in every column type."""
    import random

    rng = random.Random(17)
    for _ in range(400):
        size = rng.randint(1, 6)
        column = rng.choice(STREAM.columns[1:])
        clean = {
            "decimal": [1.5, 2, -3.25],
            "integer": [1, 2, None],
            "boolean": [True, False, None],
            "date": ["2025-03-01", "2025-03-31", None],
            "string": ["甲", "b", None],
        }[column.type]
        pool = clean * 4 + _POOL  # mostly clean values, so Arrow's path is taken too
        records = [{"code": f"c{i}", column.name: rng.choice(pool)} for i in range(size)]
        if rng.random() < 0.2:
            del records[0][column.name]  # a record without the field
        fast = to_frame(STREAM, records)
        plain = to_frame(STREAM, records, arrow=False)
        pd.testing.assert_frame_equal(fast, plain, obj=repr(records))


@pytest.mark.parametrize(
    ("kind", "values", "taken"),
    [
        ("decimal", [1.5, 2, None], True),
        ("decimal", [1.5, True], False),  # Arrow would read True as 1.0
        ("decimal", [1.5, float("inf")], False),
        ("decimal", [1.5, 1e14], False),  # beyond the warehouse's NUMERIC(18, 4)
        ("decimal", [1, 2**53 + 1], False),  # not exactly a double
        ("integer", [1, None, 3], True),
        ("integer", [1, 3.0], False),
        ("integer", [1, 2**31], False),  # beyond the warehouse's INTEGER
        ("boolean", [True, None], True),
        ("boolean", [True, 1], False),
        ("string", [" a\u3000", "", None], True),  # stripped, "" null: as the per-value path
        ("string", ["a", 1], False),
        ("string", ["a", "b\x00"], False),  # PostgreSQL's text cannot hold a NUL
        ("date", ["2025-03-01", "", None], True),
        ("date", ["2025-02-30"], False),
        ("date", [" 2025-03-01"], False),
        ("string", [None, None], False),  # no value: no type to infer
    ],
)
def test_arrow_takes_what_json_delivers_typed_and_refuses_the_rest(
    kind: str, values: list[Any], taken: bool
) -> None:
    from consumption_monitor.feeds.frames import _arrow_column

    assert (_arrow_column(kind, values) is not None) is taken


@pytest.mark.parametrize("count", [2**31, -(2**31) - 1, 2**63, 10**400, "9223372036854775808"])
def test_an_integer_beyond_the_warehouse_column_is_flagged_not_a_crash(count: Any) -> None:
    """The warehouse's integer columns are 32-bit on PostgreSQL: a larger value is
    unparseable in its row (beyond 64 bits it used to stop the whole chunk's typing with an
    OverflowError, beyond 32 bits the load's COPY)."""
    df = frame({"code": "a", "count": count}, {"code": "b", "count": 2**31 - 1})
    assert flags(df) == ["count", None]
    assert pd.isna(df["count"][0]) and df["count"][1] == 2**31 - 1


@pytest.mark.parametrize("amount", [1e14, -1e14, 10**14, "100000000000000", 1e16])
def test_a_decimal_beyond_the_warehouse_column_is_flagged_not_a_crash(amount: Any) -> None:
    """Decimal columns are NUMERIC(18, 4) (below 10^14): a larger value is unparseable in
    its row; PostgreSQL's COPY refused the whole load ("numeric field overflow")."""
    typed, problems = amounts(amount, 99999999999999.98)
    assert problems == ["amount", None]
    assert typed == [None, 99999999999999.98]


def test_the_typing_ranges_are_the_warehouse_columns() -> None:
    """One home for the number columns' shape: the typing bounds follow the schema."""
    from consumption_monitor.feeds.frames import DECIMAL_LIMIT
    from consumption_monitor.warehouse.schema import column_type

    numeric = column_type(ColumnSpec("x", "decimal"))
    assert 10.0 ** (numeric.precision - numeric.scale) == DECIMAL_LIMIT


def test_text_with_a_nul_is_flagged_not_a_crash() -> None:
    """PostgreSQL's text cannot hold U+0000 (COPY and INSERT refuse the whole load): such a
    text is unparseable in its row, on every typing path."""
    for rows in (1, 40):  # a lone row, and a column otherwise typed in one step
        records = [{"code": "a\x00b", "note": "备注\x00"}] + [
            {"code": f"c{i}", "note": "x"} for i in range(rows - 1)
        ]
        df = frame(*records)
        assert flags(df) == ["code,note"] + [None] * (rows - 1)
        assert pd.isna(df["code"][0]) and pd.isna(df["note"][0])


def test_joined_frames_equal_their_concatenation_with_contiguous_arrow_columns() -> None:
    """``frames.joined`` (a group of chunks for one GX run): the frame ``pd.concat`` gives,
    every Arrow-backed column in one chunk, dtypes and nulls kept."""
    stream = load_feed("tradein_transactions").stream("transactions")
    parts = []
    for first in (0, 3):
        records = [
            {"period": "2025-03", "order_id": f"o{first + i}", "sale_date": "2025-03-02",
             "category": " 空调 " if i else "", "price": 1000.5 + i, "subsidy": None,
             "energy_grade": 1 if i else None, "consumer_id_valid": bool(i)}
            for i in range(3)
        ]  # fmt: skip
        parts.append(to_frame(stream, records, first))
    frame = joined(parts)
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected)
    for name in frame.columns:
        backing = getattr(frame[name].array, "_pa_array", None)
        if backing is not None:
            assert backing.num_chunks == 1, name
    assert expected["order_id"].array._pa_array.num_chunks == 2  # what it fixes


# JSON text of values, by column type: what a sender may write, awkward forms included
_CLEAN_TOKENS = {
    "decimal": ["1.5", "2", "-3.25", "0.1", "1E2", "null"],
    "integer": ["1", "2", "-7", "null"],
    "boolean": ["true", "false", "null"],
    "date": ['"2025-03-01"', '"2025-03-31"', '""', "null"],
    "string": ['"甲"', '"b"', '" a\\u3000"', '""', "null"],
}
_AWKWARD_TOKENS = [
    "0", "-0", "-0.0", "0.0", "99999999999999.98", "100000000000000", "9007199254740993",
    "123456789012345678901234", "1e999", "-1e-400", "2147483648", "3.0", "true", "false",
    '"2"', '"2025-02-30"', '" 2025-03-01"', '"b\\u0000"', '"x\\ny"', '"\\ud83d\\ude00"',
    '"\\ud800"', '"true"', "{}", '{"a": 1}', "[1]", "[]", "null",
]  # fmt: skip


def _page(rng: Any, size: int) -> tuple[str, int]:
    """A page's JSON text of ``size`` records of random tokens (a few records not objects,
    fields missing, extra fields), and how many records are objects."""
    records = []
    objects = 0
    for i in range(size):
        if rng.random() < 0.01:
            records.append(rng.choice(["null", "5", '"x"', "[]"]))
            continue
        objects += 1
        fields = [f'"code": "c{i}"']
        for column in STREAM.columns[1:]:
            if rng.random() < 0.05:
                continue  # a record without the field
            pool = _CLEAN_TOKENS[column.type] * 8 + _AWKWARD_TOKENS
            fields.append(f'"{column.name}": {rng.choice(pool)}')
        if rng.random() < 0.1:
            fields.append('"extra": {"deep": [1, {"x": null}], "t": "\\u0000"}')
        rng.shuffle(fields)
        records.append("{" + ",".join(fields) + "}")
    return f'{{"feed": "f", "total": {size}, "data": [{",".join(records)}]}}', objects


def test_arrows_json_reader_gives_the_frame_typing_the_records_gives() -> None:
    """``pages_frame`` (the extract's worker: pages parsed by Arrow's JSON reader straight
    into the columns' types) gives the very frame decoding the pages and typing their
    records gives, or None, on random pages of clean and awkward JSON tokens; and it is
    taken for most pages of clean values."""
    import random

    from consumption_monitor.feeds import jsoncodec

    rng = random.Random(29)
    taken = declined = 0
    for case in range(500):
        clean = case % 2 == 0
        texts = []
        for _ in range(rng.randint(1, 3)):
            text, _objects = _page(rng, rng.randint(0, 4)) if not clean else _clean_page(rng)
            texts.append(text)
        bodies = [t.encode() for t in texts]
        first = rng.randint(0, 10**6)
        fast = pages_frame(STREAM, bodies, first)
        try:
            records = [r for body in bodies for r in jsoncodec.loads(body)["data"]]
            expected = to_frame(STREAM, records, first)
        except (TypeError, AttributeError):  # a record not an object: typing them fails
            assert fast is None
            continue
        if fast is None:
            declined += 1
            continue
        taken += 1
        pd.testing.assert_frame_equal(fast, expected, obj=repr(texts))
    assert taken > 200 and declined > 100


def _clean_page(rng: Any) -> tuple[str, int]:
    """A page whose every column holds clean values (some null), every record an object."""
    size = rng.randint(2, 30)
    records = []
    for i in range(size):
        fields = [f'"code": "c{i}"']
        for column in STREAM.columns[1:]:
            tokens = _CLEAN_TOKENS[column.type]
            pick = tokens if i and rng.random() < 0.1 else tokens[:2]  # a null, "", sometimes
            fields.append(f'"{column.name}": {rng.choice(pick)}')
        records.append("{" + ",".join(fields) + "}")
    return f'{{"data": [{",".join(records)}], "next": null}}', size


@pytest.mark.parametrize(
    ("column", "token"),
    [
        ("amount", "-0"),  # 0 for the decoder, -0.0 for the reader
        ("amount", "true"),
        ("amount", "100000000000000"),  # beyond the warehouse's NUMERIC
        ("count", "3.0"),
        ("note", "5"),
        ("note", '"b\\u0000"'),
        ("day", '"2025-02-30"'),
    ],
)
def test_arrows_json_reader_declines_what_typing_the_records_reads_otherwise(
    column: str, token: str
) -> None:
    good = '{"code": "a", "amount": 1.5, "count": 1, "flag": true, "day": "2025-03-01", '
    base = good + '"note": "x"}'
    odd = base.replace(f'"{column}": ', f'"{column}": {token}, "_was": ', 1)
    assert pages_frame(STREAM, [f'{{"data": [{base}]}}'.encode()]) is not None
    assert pages_frame(STREAM, [f'{{"data": [{base}, {odd}]}}'.encode()]) is None


@pytest.mark.parametrize(
    "records",
    [
        ['{base, "note": "x"}', "null"],  # a record that is not an object
        ["{base}", "{base}"],  # a column absent from every record (typing leaves it out)
        ['{base, "note": null}', '{base, "note": null}'],  # or null in each
        [],
    ],
)
def test_arrows_json_reader_declines_pages_only_their_records_can_type(records: list[str]) -> None:
    base = '"code": "a", "amount": 1.5, "count": 1, "flag": true, "day": "2025-03-01"'
    full = f'{{"data": [{{{base}, "note": "x"}}]}}'
    assert pages_frame(STREAM, [full.encode()]) is not None
    items = ",".join(r.replace("{base", "{" + base) for r in records)
    assert pages_frame(STREAM, [f'{{"data": [{items}]}}'.encode()]) is None
