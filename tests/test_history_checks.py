"""The batch-wide checks of transaction feeds (validation/history.py) against pandas.

They keep compact keys at each row's batch position and finish with a sort of one copy,
so memory stays bounded at tens of millions of rows; here their verdicts are compared with
the obvious (memory-hungry) pandas answer on random batches cut into chunks, with rows
missing their keys, with repeats, with items already in the warehouse, and with a wrong
row count given as the size hint (the arrays then grow).
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from consumption_monitor.common.tradein_rules import load_rules
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.validation.history import RowArrays, make_checks
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.migrate import ensure_schema

PERIOD = "2025-03"
STREAM = load_feed("tradein_transactions").streams[0]


def _batch(rows: int, seed: int) -> pd.DataFrame:
    draw = random.Random(seed)
    categories = [*load_rules(2025).limits(), "不存在"]
    return pd.DataFrame(
        {
            "_row": np.arange(rows),
            "order_id": [
                None if draw.random() < 0.02 else f"O{draw.randrange(rows * 4)}"
                for _ in range(rows)
            ],
            "consumer_key": [
                None if draw.random() < 0.02 else f"c{draw.randrange(rows // 2)}"
                for _ in range(rows)
            ],
            "category": [draw.choice(categories) for _ in range(rows)],
            "sale_date": [f"2025-03-{draw.randint(1, 31):02d}" for _ in range(rows)],
        }
    )


def _expected_duplicates(batch: pd.DataFrame) -> set[int]:
    present = batch[batch["order_id"].notna()]
    return set(present.loc[present["order_id"].duplicated(), "_row"])


def _expected_over_limit(batch: pd.DataFrame, prior: dict[tuple[str, str], int]) -> set[int]:
    limits = load_rules(2025).limits()
    counted = batch[batch["consumer_key"].notna() & batch["category"].isin(list(limits))]
    ordered = counted.sort_values(["sale_date", "_row"])
    nth = ordered.groupby(["consumer_key", "category"]).cumcount() + 1
    pairs = zip(ordered["consumer_key"], ordered["category"], strict=True)
    earlier = pd.Series([prior.get(pair, 0) for pair in pairs], index=ordered.index)
    over = nth + earlier > ordered["category"].map(limits)
    return set(ordered.loc[over, "_row"])


def _run(batch: pd.DataFrame, url: str, chunk: int, hint: int) -> dict[str, set[int]]:
    checks = make_checks(STREAM, PERIOD, engine_for(url), hint)
    for start in range(0, len(batch), chunk):
        frame = batch.iloc[start : start + chunk]
        for check in checks:
            check.observe(frame)
    for check in checks:
        check.finish()
    return {check.spec.name: check.flagged for check in checks}


@pytest.mark.parametrize(("chunk", "hint"), [(700, 3000), (1000, 0), (333, 100)])
def test_verdicts_equal_pandas_for_any_chunking_and_size_hint(
    sqlite_url: str, chunk: int, hint: int
) -> None:
    ensure_schema(sqlite_url)
    batch = _batch(3000, seed=chunk)
    flagged = _run(batch, sqlite_url, chunk, hint)
    assert flagged["unique_across_periods"] == _expected_duplicates(batch)
    assert flagged["tradein_item_limit"] == _expected_over_limit(batch, {})
    assert flagged["unique_across_periods"] and flagged["tradein_item_limit"]


def test_items_already_in_the_warehouse_count(warehouse_url: str) -> None:
    """A consumer's fridge bought in February uses the allowance March would have had
    (on PostgreSQL the keys travel joined in one string: ``history.rows_matching``)."""
    sqlite_url = warehouse_url
    from sqlalchemy import insert

    from consumption_monitor.warehouse import partitions, schema

    ensure_schema(sqlite_url)
    batch = _batch(2000, seed=7)
    first = batch[batch["consumer_key"].notna() & (batch["category"] == "冰箱")].iloc[0]
    with engine_for(sqlite_url).begin() as conn:
        if partitions.applies(conn, STREAM):
            partitions.ensure_partition(conn, schema.core(STREAM), "2025-02")
        conn.execute(
            insert(schema.core(STREAM)),
            [
                {
                    "period": "2025-02",
                    "order_id": "EARLIER",
                    "sale_date": "2025-02-10",
                    "category": "冰箱",
                    "price": 3000.0,
                    "subsidy": 300.0,
                    "uscc": "91510400MA0000000X",
                    "consumer_key": first["consumer_key"],
                    "batch_id": "b",
                }
            ],
        )
    flagged = _run(batch, sqlite_url, 500, 2000)
    prior = {(first["consumer_key"], "冰箱"): 1}
    assert flagged["tradein_item_limit"] == _expected_over_limit(batch, prior)
    assert int(first["_row"]) in flagged["tradein_item_limit"]


def test_row_arrays_grow_past_a_wrong_hint() -> None:
    arrays = RowArrays({"h": np.uint64, "present": bool}, 2, {"h": 0, "present": False})
    arrays.put(np.array([0, 5]), h=np.array([1, 2], dtype=np.uint64), present=True)
    arrays.put(np.array([9]), h=np.array([3], dtype=np.uint64), present=True)
    assert arrays["h"].tolist() == [1, 0, 0, 0, 0, 2, 0, 0, 0, 3]
    assert arrays["present"].sum() == 3 and arrays.size == 10


@pytest.mark.postgres
def test_keys_match_alike_joined_or_as_an_array(pg_database: str) -> None:
    """Keys holding the separator, an empty key, and plain keys: the joined string and the
    array parameter find the same rows."""
    from sqlalchemy import column, insert, select, table

    from consumption_monitor.validation import history

    engine = engine_for(pg_database)
    values = ["a", "b\x1fc", "", "d", "中文", "e,f"]
    with engine.begin() as conn:
        conn.exec_driver_sql("create table keys_t (k text)")
        conn.execute(insert(table("keys_t", column("k"))), [{"k": v} for v in values])
    t = table("keys_t", column("k"))
    query = select(t.c.k)

    def found(keys: list[str]) -> list[str]:
        return sorted(r[0] for r in history.rows_matching(engine, query, t.c.k, keys))

    assert found(["a", "d", "中文", "e,f", "zz"]) == sorted(["a", "d", "中文", "e,f"])  # joined
    assert found(["b\x1fc", "a"]) == ["a", "b\x1fc"]  # a separator in a key: the array form
    assert found([""]) == [""]
    assert found(["d"]) == ["d"]
