"""The 64-bit text keys of the history checks (validation/keyhash.py) and the helpers that
feed them: a value's key must not depend on its neighbours, its chunk or its container
(a duplicate split across two chunks would otherwise pass), and distinct values must get
distinct keys, byte-length boundaries and padding included."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa

from consumption_monitor.validation.history import _day_numbers, _joined
from consumption_monitor.validation.keyhash import text_keys

TRICKY = [
    "",
    "a",
    "a\x00",
    "\x00a",
    "\x00",
    "\x00" * 8,
    "abcdefgh",
    "abcdefgh\x00",
    "abcdefghi",
    "abcdefghabcdefgh",
    "abcdefghabcdefgh1",
    "订单",
    "订单号0001",
    "b\x1fc",
    " a",
    "a ",
]


def _random_texts(n: int, seed: int) -> list[str]:
    draw = random.Random(seed)
    alphabet = "abcxyz0189-_中文\x00\x1f"
    return ["".join(draw.choices(alphabet, k=draw.randint(0, 40))) for _ in range(n)]


def test_a_key_depends_on_the_value_alone() -> None:
    values = _random_texts(5000, seed=3) + TRICKY
    whole = text_keys(values)
    alone = np.array([text_keys([v])[0] for v in values], dtype=np.uint64)
    assert (whole == alone).all()
    arrow = pa.array(values, type=pa.string())
    assert (text_keys(arrow) == whole).all()
    assert (text_keys(pa.chunked_array([arrow[:100], arrow[100:]])) == whole).all()
    sliced = arrow.slice(777, 1000)  # an Arrow slice: its offsets start inside the buffer
    assert (text_keys(sliced) == whole[777:1777]).all()
    assert (text_keys(pd.Series(values, dtype="str")) == whole).all()
    assert (text_keys(pd.Series(values, dtype=object)) == whole).all()


def test_distinct_values_get_distinct_keys() -> None:
    values = list(dict.fromkeys(_random_texts(20000, seed=5) + TRICKY))
    keys = text_keys(values)
    assert len(np.unique(keys)) == len(values)


def test_other_columns_are_keyed_by_their_text() -> None:
    numbers = text_keys(pd.Series([1, None, 23], dtype="Int64"))
    assert (numbers == text_keys(["1", "", "23"])).all()
    codes = pd.Series(["x", "y", "x"]).astype("category")
    assert (text_keys(codes) == text_keys(["x", "y", "x"])).all()
    assert (text_keys([1, "1", None]) == text_keys(["1", "1", ""])).all()


def test_null_is_the_empty_text_and_empty_input_is_empty() -> None:
    keys = text_keys(pd.Series(["x", None, ""], dtype="str"))
    assert keys[1] == keys[2] != keys[0]
    assert text_keys([]).dtype == np.uint64 and len(text_keys([])) == 0
    assert len(text_keys(pa.array([None, None], type=pa.string()))) == 2


def test_sale_days_sort_in_date_order_and_malformed_ones_first() -> None:
    dates = pd.Series(
        [
            "2025-03-12",
            None,
            "2025/03/01",
            "2025-02-30",
            "2024-12-31",
            "x",
            "2025-3-02",
            "１２３４-５６-７８",
        ],
        dtype="str",
    )
    days = _day_numbers(dates)
    assert days.dtype == np.int32
    assert days.tolist() == [20250312, 0, 0, 20250230, 20241231, 0, 0, 0]


def test_keys_join_only_when_the_joined_form_carries_them() -> None:
    assert _joined(["a", "中文", "e,f"]) == "a\x1f中文\x1fe,f"
    assert _joined(["a"]) == "a"
    assert _joined(["a", ""]) is None  # string_to_array would drop the empty key
    assert _joined([""]) is None
    assert _joined(["a", "b\x1fc"]) is None  # the server would split it in two
    assert _joined(["a", 7]) is None  # not text
