"""Table digests compare warehouses across backends: the same data loaded into SQLite and
into PostgreSQL digests alike (the native Celery test relies on it)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cm_devtools.topology import compare as topology
from consumption_monitor.common.periods import Period
from consumption_monitor.indicators.snapshots import CONTENT, snapshot_id
from consumption_monitor.warehouse.digest import canonical_value


@pytest.mark.parametrize(
    ("sqlite_value", "postgres_value"),
    [
        (462, Decimal("462.0000")),
        (1281.58, Decimal("1281.5800")),
        (0, Decimal("0")),
        (1, True),  # SQLite stores booleans as integers
        (0, False),
    ],
)
def test_values_have_one_canonical_form(sqlite_value, postgres_value) -> None:
    assert canonical_value(sqlite_value) == canonical_value(postgres_value)
    assert canonical_value("1-2月") == "1-2月"
    assert canonical_value(True) != canonical_value(False)


def _content(actual_ytd) -> dict:
    return {**dict.fromkeys(CONTENT), "kpi_id": "k", "period": "2024-03", "actual_ytd": actual_ytd}


def test_snapshot_id_does_not_depend_on_the_backend_number_type() -> None:
    as_float, as_decimal = _content(13429.65), _content(Decimal("13429.6500"))
    assert snapshot_id(as_float, None) == snapshot_id(as_decimal, None)
    assert snapshot_id(as_float, None) != snapshot_id(as_float, "an-earlier-snapshot")


@pytest.mark.postgres
@pytest.mark.slow
def test_same_data_digests_alike_on_sqlite_and_postgres(
    feed_server, pg_database: str, sqlite_url: str, tmp_path: Path
) -> None:
    # trade-in: booleans (SQLite integers) and a ratio of whole-number sums (SQLite integer
    # division) once digested differently
    feeds = ["retail_monthly", "ecommerce_monthly", "work_ledgers", "tradein_transactions"]
    first, last = Period(2024, 1), Period(2024, 3)
    topology.build_embedded(feeds, first, last, url=pg_database, data_dir=tmp_path / "pg")
    topology.build_embedded(feeds, first, last, url=sqlite_url, data_dir=tmp_path / "sqlite")
    pg, sqlite = topology.digests(pg_database), topology.digests(sqlite_url)
    assert sum(d["rows"] for d in pg.values()) > 100
    assert pg == sqlite
