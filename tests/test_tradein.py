"""The trade-in (以旧换新) feed: subsidy rules, pseudonymisation, chunked validation and
load, quarantine by enterprise, idempotency and faults, on SQLite and PostgreSQL.

The scan test is the privacy guarantee: after a run, no file under the data directory
(raw archive included), no text column of any table and no captured log line holds a
clear ID number or phone of what the feed served, nor anything shaped like one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import String, Text, inspect, select, text

from cm_devtools.sample_server import tradein_data
from consumption_monitor.common.identifiers import is_valid_resident_id
from consumption_monitor.common.periods import Period
from consumption_monitor.common.tradein_rules import load_rules
from consumption_monitor.feeds.pii import PiiKeyMissing, Pseudonymiser, is_valid_mobile, pii_key
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.steps import extract_step, load_step, run_period, validate_step
from consumption_monitor.validation import derivation_registry
from consumption_monitor.validation import tradein as _tradein  # noqa: F401  registers tradein_rules
from consumption_monitor.validation.tradein_audit import audit_cases
from consumption_monitor.warehouse import partitions, schema
from consumption_monitor.warehouse.db import engine_for
from tests.conftest import PII_KEY

FEED = "tradein_transactions"
PERIOD = "2025-03"
ROWS = 600  # per month in these tests (the default is ~2,000; the bench runs 1M)
ID_RE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


@pytest.fixture(autouse=True)
def _small_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tradein_data.ROWS_ENV, str(ROWS))


def _count(url: str, sql: str, **params) -> int:
    with engine_for(url).connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


# --- rules as configuration -------------------------------------------------------------


def test_rules_files_cover_every_sample_year() -> None:
    for year in (2024, 2025, 2026):
        rules = load_rules(year)
        assert rules.year == year
        assert {r.group for r in rules.categories.values()} <= {"家电", "数码", "汽车", "家装厨卫"}
    r25 = load_rules(2025).categories
    assert len([r for r in r25.values() if r.group == "家电"]) == 12
    assert r25["空调"].item_limit == 3 and r25["冰箱"].item_limit == 1
    assert r25["冰箱"].max_subsidy(8000, 1) == 1600  # 20 % below the cap
    assert r25["冰箱"].max_subsidy(20000, 2) == 2000  # 15 % = 3,000 capped at 2,000
    assert r25["冰箱"].max_subsidy(8000, 3) is None  # grade 3 is not subsidised
    assert r25["手机"].max_subsidy(5000, None) == 500 and r25["手机"].price_max == 6000
    assert r25["汽车报废更新新能源"].max_subsidy(200000, None) == 20000
    assert "手机" not in load_rules(2024).categories  # digital products from 2025 on


def test_2025_car_and_digital_rules_follow_the_national_notice() -> None:
    """Scrappage renewals pay fixed amounts (20,000 / 15,000), replacement renewals are
    capped (15,000 / 13,000), digital products are subsidised for sales from 2025-01-20."""
    r25 = load_rules(2025).categories
    assert r25["汽车报废更新新能源"].fixed_amount == 20000 and r25["汽车报废更新新能源"].cap is None
    assert r25["汽车报废更新燃油"].fixed_amount == 15000
    assert r25["汽车置换更新新能源"].cap == 15000 and r25["汽车置换更新新能源"].fixed_amount is None
    assert r25["汽车置换更新燃油"].cap == 13000
    phone = r25["手机"]
    assert phone.effective_from == date(2025, 1, 20)
    assert not phone.in_effect(date(2025, 1, 19)) and phone.in_effect(date(2025, 1, 20))
    assert r25["冰箱"].effective_from is None and r25["冰箱"].in_effect(date(2025, 1, 1))
    # every shipped file states what is unverified; the note names the file
    for year in (2024, 2025, 2026):
        note = load_rules(year).unverified_note()
        assert note and f"tradein_rules_{year}.yaml" in note and "未经核实" in note


def test_fixed_amounts_and_effective_dates_as_columns() -> None:
    """18,000 and 13,500 on a scrappage sale fail (they passed as caps); 20,000 and 15,000
    pass; a replacement sale below its cap passes; a phone sold on 2025-01-19 fails, on
    2025-01-20 passes; boundaries at a fen."""
    frame = pd.DataFrame(
        {
            "category": ["汽车报废更新新能源", "汽车报废更新燃油", "汽车报废更新新能源",
                         "汽车报废更新燃油", "汽车置换更新新能源", "汽车置换更新燃油",
                         "手机", "手机", "汽车报废更新新能源"],
            "category_group": ["汽车"] * 6 + ["数码", "数码", "汽车"],
            "energy_grade": pd.array([None] * 9, dtype="Int64"),
            "price": [200000.0, 100000.0, 200000.0, 100000.0, 200000.0, 90000.0,
                      3000.0, 3000.0, 150000.0],
            "subsidy": [18000.0, 13500.0, 20000.0, 15000.0, 12000.0, 13000.01,
                        450.0, 450.0, 20000.004],
            "sale_date": ["2025-01-10"] * 6 + ["2025-01-19", "2025-01-20", "2025-01-31"],
        }
    )  # fmt: skip
    ctx = derivation_registry.DeriveContext(period="2025-01", frames={})
    out = derivation_registry.apply(["tradein_rules"], frame, "transactions", ctx)
    fixed = [None if pd.isna(v) else v for v in out["_subsidy_fixed_ok"].tolist()]
    within = [None if pd.isna(v) else v for v in out["_subsidy_within_rule"].tolist()]
    effect = [None if pd.isna(v) else v for v in out["_sale_in_effect"].tolist()]
    assert fixed == [False, False, True, True, None, None, None, None, True]
    assert within == [None, None, None, None, True, False, True, True, None]
    assert effect == [None] * 6 + [False, True, None]
    assert out["_subsidy_max"].tolist()[:2] == [20000.0, 15000.0]


def test_rule_columns_on_hand_cases() -> None:
    frame = pd.DataFrame(
        {
            "category": ["冰箱", "冰箱", "手机", "手机", "电动自行车", "空调", "冰箱"],
            "category_group": ["家电", "家电", "数码", "数码", "家电", "数码", "家电"],
            "energy_grade": pd.array([1, 2, None, None, 1, 1, None], dtype="Int64"),
            "price": [8000.0, 20000.0, 5000.0, 6500.0, 3000.0, 4000.0, 3000.0],
            "subsidy": [1600.0, 2000.01, 500.0, 500.0, 100.0, 800.0, 100.0],
            "sale_date": ["2025-03-01"] * 6 + ["2024-12-31"],
        }
    )
    ctx = derivation_registry.DeriveContext(period=PERIOD, frames={})
    out = derivation_registry.apply(["tradein_rules"], frame, "transactions", ctx)
    assert out["_subsidy_within_rule"].tolist() == [True, False, True, True, pd.NA, True, pd.NA]
    assert out["_price_within_limit"].tolist()[2:4] == [True, False]
    assert out["_category_known"].tolist()[4] is False
    assert out["_group_ok"].tolist()[5] is False  # 空调 declared 数码
    assert out["_grade_ok"].tolist()[6] is False
    assert out["_sale_in_policy_year"].tolist() == [True] * 6 + [False]
    assert out["_sale_in_effect"].tolist()[:2] == [pd.NA, pd.NA]  # no own dates: null
    assert out["_sale_in_effect"].tolist()[2:4] == [True, True]  # phones in March


def _rule_columns_row_by_row(frame: pd.DataFrame, year: int) -> dict[str, list]:
    """The rule columns worked out one row at a time from CategoryRule.max_subsidy: the
    reading of the rules the vectorised derivation must reproduce."""
    rules = load_rules(year).categories
    keys = ("known", "group", "max", "within", "fixed", "grade", "price")
    out: dict[str, list] = {k: [] for k in keys}
    for row in frame.to_dict("records"):
        row = {k: None if pd.isna(v) else v for k, v in row.items()}
        rule = rules.get(row["category"]) if row["category"] is not None else None
        price, subsidy = row["price"], row["subsidy"]
        grade = None if row["energy_grade"] is None else int(row["energy_grade"])
        limit = rule.max_subsidy(price, grade) if rule else None
        out["known"].append(None if row["category"] is None else rule is not None)
        out["group"].append(
            None if rule is None or row["category_group"] is None
            else row["category_group"] == rule.group
        )  # fmt: skip
        out["max"].append(round(limit, 2) if limit not in (None, float("inf")) else None)
        fixed = rule is not None and rule.fixed_amount is not None
        known = limit is not None and subsidy is not None
        out["within"].append(subsidy <= limit + 0.005 if known and not fixed else None)
        out["fixed"].append(abs(subsidy - limit) <= 0.005 if known and fixed else None)
        out["grade"].append(
            None if rule is None or rule.grade_rates is None else grade in rule.grade_rates
        )
        out["price"].append(
            None if rule is None or rule.price_max is None or price is None
            else price <= rule.price_max + 0.005
        )  # fmt: skip
    return out


def test_rule_columns_match_the_rules_row_by_row() -> None:
    """Every sample row of a month (all categories, injected rule breakers) plus hand-made
    gaps: the vectorised columns equal the rules applied to each row on its own."""
    period = Period.parse(PERIOD)
    rows = [tradein_data.row_at(period, i) for i in range(3000)]
    rule_breakers = ("subsidy_over_cap", "digital_over_price", "unknown_category", "missing_grade")
    for n, defect in enumerate(d for d in tradein_data.DEFECTS if d.name in rule_breakers):
        for i in range(n, len(rows), 97):  # what the feed server's bad_rows fault does
            defect.change(rows[i])
    frame = pd.DataFrame(
        {
            "category": [r["category"] for r in rows] + [None, "不存在", "冰箱", "手机", "空调"],
            "category_group": [r.get("category_group") for r in rows]
            + ["家电", "家电", None, "数码", "家电"],
            "energy_grade": pd.array(
                [r.get("energy_grade") for r in rows] + [1, 1, None, None, 7], dtype="Int64"
            ),
            "price": [r["price"] for r in rows] + [100.0, 100.0, 3000.0, None, 2000.0],
            "subsidy": [r["subsidy"] for r in rows] + [1.0, 1.0, 100.0, 10.0, None],
            "sale_date": [r["sale_date"] for r in rows] + [None] * 5,
        }
    )
    expected = _rule_columns_row_by_row(frame, period.year)
    ctx = derivation_registry.DeriveContext(period=PERIOD, frames={})
    out = derivation_registry.apply(["tradein_rules"], frame.copy(), "transactions", ctx)

    def column(name: str) -> list:
        return [None if pd.isna(v) else v for v in out[name].tolist()]

    assert column("_category_known") == expected["known"]
    assert column("_group_ok") == expected["group"]
    assert column("_subsidy_max") == expected["max"]
    assert column("_subsidy_within_rule") == expected["within"]
    assert column("_subsidy_fixed_ok") == expected["fixed"]
    assert False not in expected["fixed"]  # the generator pays fixed amounts exactly
    assert True in expected["fixed"]
    assert column("_grade_ok") == expected["grade"]
    assert column("_price_within_limit") == expected["price"]
    assert column("_sale_in_policy_year")[-5:] == [None] * 5
    for name in ("within", "price", "known", "grade"):  # each rule is broken somewhere
        assert False in expected[name], name


# --- personal data ------------------------------------------------------------------------


def test_pseudonyms_are_keyed_stable_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_feed(FEED).streams[0]
    one, other = Pseudonymiser(PII_KEY.encode()), Pseudonymiser(b"another-key-0123456789")
    record = {"consumer_id": "11010519491231002x", "consumer_phone": "+86 138-0013-8000"}
    one.apply(spec.pii, record)
    assert set(record) == {"consumer_key", "consumer_id_valid", "phone_key", "phone_valid"}
    assert record["consumer_id_valid"] is True and record["phone_valid"] is True
    assert record["consumer_key"] == one.pseudonym("resident_id", "11010519491231002X")
    assert record["consumer_key"] != other.pseudonym("resident_id", "11010519491231002X")
    assert re.fullmatch(r"[0-9a-f]{64}", record["phone_key"])
    bad = {"consumer_id": "110105194912310021", "consumer_phone": "0812-3312345"}
    one.apply(spec.pii, bad)
    assert bad["consumer_id_valid"] is False and bad["phone_valid"] is False
    assert "***" in repr(one) and PII_KEY not in repr(one)
    monkeypatch.delenv("CM_PII_KEY")
    with pytest.raises(PiiKeyMissing):
        pii_key()
    monkeypatch.setenv("CM_PII_KEY", "short")
    with pytest.raises(PiiKeyMissing):
        pii_key()


def test_extract_without_key_fails_before_fetching(feed_server, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CM_PII_KEY")
    with pytest.raises(PiiKeyMissing):
        extract_step(FEED, PERIOD, url=f"sqlite:///{tmp_path / 'w.db'}")
    assert not [r for r in feed_server.request_log if "tradein" in r["path"]]


# --- the sample stream ---------------------------------------------------------------------


def test_sample_stream_is_windowed_and_deterministic(monkeypatch) -> None:
    period = Period(2025, 3)
    total, whole = tradein_data.window(period, 0, date(2025, 12, 20), 0, ROWS)
    assert total == ROWS == len(whole)
    pieces = []
    for start in range(0, ROWS, 137):  # any page size gives the same rows
        pieces.extend(tradein_data.window(period, 0, date(2025, 12, 20), start, 137)[1])
    assert pieces == whole
    assert len({r["order_id"] for r in whole}) == ROWS
    assert len({r["consumer_id"] for r in whole}) == ROWS
    assert all(is_valid_resident_id(r["consumer_id"]) for r in whole)
    assert all(is_valid_mobile(r["consumer_phone"]) for r in whole)
    rules = load_rules(2025).categories
    for r in whole:
        rule = rules[r["category"]]
        limit = rule.max_subsidy(r["price"], r["energy_grade"])
        assert r["subsidy"] <= limit + 0.005
        if rule.fixed_amount is not None:
            assert r["subsidy"] == rule.fixed_amount
    january = tradein_data.window(Period(2025, 1), 0, date(2025, 12, 20), 0, ROWS)[1]
    digital = [r for r in january if rules[r["category"]].group == "数码"]
    assert digital and min(r["sale_date"] for r in digital) >= "2025-01-20"
    monkeypatch.setenv(tradein_data.ROWS_ENV, "10000000")  # 10M rows: only the page is built
    total, page = tradein_data.window(period, 0, date(2025, 12, 20), 9_999_000, 1000)
    assert total == 10_000_000 and len(page) == 1000
    assert page[-1]["order_id"] == tradein_data.order_id(period, 9_999_999)


# --- the pipeline --------------------------------------------------------------------------


def _scan_texts(url: str) -> list[str]:
    """Every value of every text column of every table and view."""
    out: list[str] = []
    with engine_for(url).connect() as conn:
        insp = inspect(conn)
        for name in insp.get_table_names() + insp.get_view_names():
            columns = [
                c["name"] for c in insp.get_columns(name) if isinstance(c["type"], String | Text)
            ]
            if not columns:
                continue
            cols = ", ".join(f'"{c}"' for c in columns)
            for row in conn.execute(text(f'select {cols} from "{name}"')):
                out.extend(str(v) for v in row if v is not None)
    return out


def _looks_personal(blob: str, allowed: set[str]) -> list[str]:
    hits = [m for m in MOBILE_RE.findall(blob) if m not in allowed]
    hits += [m for m in ID_RE.findall(blob) if is_valid_resident_id(m) and m not in allowed]
    return hits


def test_no_clear_identifier_anywhere_after_a_run(
    feed_server, warehouse_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    from cm_devtools.sample_server.faults import FaultPlan

    feed_server.faults.replace(FaultPlan.from_specs(["bad_rows:times=-1", "truncate:times=1"]))
    out = run_period(FEED, PERIOD, url=warehouse_url)
    assert out["load"]["rows"]["transactions"] == ROWS - 8  # 8 rule breakers held back
    clear = tradein_data.identifiers(Period.parse(PERIOD))
    assert len(clear) == 2 * ROWS
    # USCCs of the sample enterprises are legal-person codes, not personal data
    allowed = {r["uscc"] for r in tradein_data.window(Period(2025, 3), 0, date.today(), 0, ROWS)[1]}
    data_dir = tmp_path / "data"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" and "tradein" in str(p) for p in files)
    for path in files:
        blob = path.read_bytes().decode("utf-8", errors="replace")
        assert not [c for c in clear if c in blob], f"clear identifier in {path}"
        assert not _looks_personal(blob, allowed), f"identifier-shaped text in {path}"
    values = _scan_texts(warehouse_url)
    joined = "\n".join(values)
    assert "consumer_key" in joined or values  # tables were read
    assert not [c for c in clear if c in joined]
    assert not _looks_personal(joined, allowed)
    logs = caplog.text
    assert "tradein" in logs
    assert not [c for c in clear if c in logs] and not _looks_personal(logs, allowed)
    # the archive keeps the checksum of the bytes received beside the pseudonymised page
    manifest = next(data_dir.rglob("manifest.json"))
    pages = json.loads(manifest.read_text(encoding="utf-8"))["pages"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", p["received_sha256"]) for p in pages)
    assert all(p["received_sha256"] != p["sha256"] for p in pages)
    assert _count(
        warehouse_url, "select count(*) from raw_payload where received_sha256 is not null"
    ) == len(pages)


def test_rule_breakers_quarantined_and_listed_by_enterprise(feed_server, warehouse_url) -> None:
    from cm_devtools.sample_server.faults import FaultPlan

    feed_server.faults.replace(FaultPlan.from_specs(["bad_rows:times=-1"]))
    out = run_period(FEED, PERIOD, url=warehouse_url)
    assert out["validation"]["verdict"] == "warning"  # uscc check and phone: warnings
    assert out["validation"]["quarantined"] == {"transactions": 8}
    page = Path(out["validation"]["report"]).read_text(encoding="utf-8")
    assert "tradein_rules_2025.yaml 含未经核实的规则" in page and "家装厨卫" in page
    with engine_for(warehouse_url).connect() as conn:
        q = schema.audit_quarantine
        rows = dict(conn.execute(select(q.c.row_number, q.c.failed_expectations)).all())
    expected = {
        7: "_subsidy_within_rule",
        13: "_price_within_limit",
        19: "unique_across_periods[order_id]",
        25: "tradein_item_limit",
        31: "consumer_id_valid",
        37: "_sale_date_in_period",
        43: "_category_known",
        49: "_grade_ok",
    }
    assert sorted(rows) == sorted(expected)
    for row, rule in expected.items():
        assert rule in rows[row]
    cases = audit_cases(warehouse_url)
    assert sum(c["transactions"] for c in cases) == 8
    assert all(re.fullmatch(r"[0-9A-Z]{18}", c["enterprise_uscc"]) for c in cases)
    rules = {rule for c in cases for rule in c["rules"]}
    assert any("件数不超过上限" in r for r in rules) and any("订单号" in r for r in rules)
    detail = audit_cases(warehouse_url, enterprise=cases[0]["enterprise_uscc"], detail=True)
    assert len(detail) == cases[0]["transactions"] and detail[0]["order_id"].startswith("TI")
    assert (
        _count(
            warehouse_url, "select sum(rows_quarantined) from mart_tradein_quarantine_by_enterprise"
        )
        == 8
    )
    marts = _count(warehouse_url, "select sum(items) from mart_tradein_by_category_month")
    assert marts == ROWS - 8
    year = _count(warehouse_url, "select sum(transactions) from mart_tradein_enterprise_year")
    assert year == ROWS - 8


def test_a_nul_in_a_text_quarantines_its_row_and_the_rest_loads(feed_server, warehouse_url) -> None:
    """PostgreSQL's text cannot hold U+0000: a transaction whose enterprise code (the audit
    key) carries one is quarantined, its enterprise listed without it, and the other rows
    load, on both backends (the COPY, and the quarantine's entity key, refused the whole
    run before)."""
    feed_server.faults.add("long_text", column="uscc", length=2, row=5, char="\x00")
    out = run_period(FEED, PERIOD, url=warehouse_url)
    assert out["validation"]["quarantined"] == {"transactions": 1}
    with engine_for(warehouse_url).connect() as conn:
        q = schema.audit_quarantine
        held = conn.execute(select(q.c.row_number, q.c.entity_key, q.c.raw_values)).one()
    assert held.row_number == 5 and held.entity_key == "\ufffd\ufffd"
    assert json.loads(held.raw_values)["uscc"] == "\x00\x00"
    assert _count(warehouse_url, "select count(*) from core_tradein_transactions") == ROWS - 1


def test_history_checks_read_the_warehouse(feed_server, warehouse_url) -> None:
    """An order id already loaded for another period, and a consumer who already had the
    year's item of a category in an earlier month, are quarantined."""
    from consumption_monitor.warehouse.migrate import ensure_schema

    ensure_schema(warehouse_url)
    period = Period(2025, 4)
    rows = tradein_data.window(period, 0, date(2025, 12, 20), 0, ROWS)[1]
    pseudo = Pseudonymiser(PII_KEY.encode())
    fridge = next(i for i, r in enumerate(rows) if r["category"] != "空调")
    other = next(i for i in range(fridge + 1, ROWS) if rows[i]["category"] != "空调")
    earlier = [
        {  # the same order id, loaded under March
            "period": "2025-03", "order_id": rows[other]["order_id"], "batch_id": "x" * 20,
            "category": "冰箱", "consumer_key": "0" * 64,
        },
        {  # March: this consumer already bought the category
            "period": "2025-03", "order_id": "TI202503FFFFFFFFFF", "batch_id": "x" * 20,
            "category": rows[fridge]["category"],
            "consumer_key": pseudo.pseudonym("resident_id", rows[fridge]["consumer_id"]),
        },
    ]  # fmt: skip
    core = schema.core(load_feed(FEED).streams[0])
    with engine_for(warehouse_url).begin() as conn:
        if partitions.applies(conn, load_feed(FEED).streams[0]):
            partitions.ensure_partition(conn, core, "2025-03")
        conn.execute(core.insert(), earlier)
    out = run_period(FEED, str(period), url=warehouse_url)
    assert out["validation"]["quarantined"] == {"transactions": 2}
    with engine_for(warehouse_url).connect() as conn:
        q = schema.audit_quarantine
        held = dict(conn.execute(select(q.c.row_number, q.c.failed_expectations)).all())
    assert "unique_across_periods" in held[other] and "tradein_item_limit" in held[fridge]


def test_reruns_are_idempotent_and_revisions_supersede(feed_server, warehouse_url) -> None:
    from cm_devtools.sample_server.faults import FaultPlan

    first = run_period(FEED, PERIOD, url=warehouse_url)
    again = run_period(FEED, PERIOD, url=warehouse_url)
    assert again["load"]["outcome"] == "unchanged"
    assert again["batch"]["batch_id"] == first["batch"]["batch_id"]
    subsidy = "select sum(subsidy) from core_tradein_transactions where period = :p"
    before = _count(warehouse_url, subsidy, p=PERIOD)
    feed_server.faults.replace(FaultPlan.from_specs(["revision:revision=2"]))
    revised = run_period(FEED, PERIOD, url=warehouse_url)
    assert revised["load"]["superseded"] == first["batch"]["batch_id"]
    assert _count(warehouse_url, "select count(*) from core_tradein_transactions") == ROWS
    assert before - _count(warehouse_url, subsidy, p=PERIOD) == pytest.approx(2 * ROWS / 50, abs=1)
    # history checks ignore the period's own current rows: a revision is not a duplicate
    assert revised["validation"]["quarantined"] == {"transactions": 0}


# The trade-in marts as written on the transactions before the monthly rollup: the rollup
# must give the very same rows.
_ON_TRANSACTIONS = {
    "mart_tradein_by_category_month": (
        "select period, category_group, category, count(distinct order_id), count(*), "
        "round(sum(price), 2), round(sum(subsidy), 2) from core_tradein_transactions "
        "group by period, category_group, category",
        "period, category_group, category, transactions, items, sales_yuan, subsidy_yuan",
    ),
    "mart_tradein_by_enterprise_month": (
        "select period, uscc, max(enterprise_name), category_group, count(distinct order_id), "
        "round(sum(price), 2), round(sum(subsidy), 2) from core_tradein_transactions "
        "group by period, uscc, category_group",
        "period, enterprise_uscc, enterprise_name, category_group, transactions, sales_yuan, "
        "subsidy_yuan",
    ),
    "mart_tradein_enterprise_year": (
        "select substr(period, 1, 4), uscc, max(enterprise_name), round(sum(price), 2), "
        "round(sum(subsidy), 2), count(distinct order_id), count(distinct period), max(period) "
        "from core_tradein_transactions group by substr(period, 1, 4), uscc",
        "year, enterprise_uscc, enterprise_name, sales_yuan, subsidy_yuan, transactions, months, "
        "last_period",
    ),
}


def _rows(url: str, sql: str) -> list[tuple]:
    def plain(v):
        return round(float(v), 2) if isinstance(v, float | Decimal) else v

    with engine_for(url).connect() as conn:
        return sorted(tuple(plain(v) for v in r) for r in conn.execute(text(sql)))


def test_marts_from_the_rollup_equal_the_transactions(feed_server, warehouse_url) -> None:
    """Loads, a revision and quarantined rows keep core_tradein_monthly equal to the
    aggregate of the transactions, and the marts read from it give the rows they gave when
    they read the transactions (an order id recurring in another month included)."""
    from cm_devtools.sample_server.faults import FaultPlan

    feed_server.faults.replace(FaultPlan.from_specs(["bad_rows:period=2025-03,times=-1"]))
    for period in ("2024-12", PERIOD, "2025-04"):
        run_period(FEED, period, url=warehouse_url)
    feed_server.faults.replace(FaultPlan.from_specs(["revision:period=2025-04,revision=2"]))
    assert run_period(FEED, "2025-04", url=warehouse_url)["load"]["superseded"]
    with engine_for(warehouse_url).begin() as conn:  # an order id seen in two months
        march = conn.execute(
            text(
                "select order_id, uscc from core_tradein_transactions "
                "where period = '2025-03' order by order_id limit 1"
            )
        ).one()
        conn.execute(  # not in the rollup: order ids are not rolled up
            text(
                "update core_tradein_transactions set order_id = :order_id "
                "where period = '2025-04' and order_id = (select min(order_id) "
                "from core_tradein_transactions where period = '2025-04' and uscc = :uscc)"
            ),
            {"order_id": march.order_id, "uscc": march.uscc},
        )
    rollup = "select period, category_group, category, uscc, count(*), round(sum(price), 2), "
    rollup += "round(sum(subsidy), 2), max(enterprise_name) from core_tradein_transactions "
    rollup += "group by period, category_group, category, uscc"
    stored = "select period, category_group, category, uscc, items, round(sales_yuan, 2), "
    stored += "round(subsidy_yuan, 2), enterprise_name from core_tradein_monthly"
    assert _rows(warehouse_url, stored) == _rows(warehouse_url, rollup)
    assert len(_rows(warehouse_url, stored)) > 10
    for view, (on_transactions, columns) in _ON_TRANSACTIONS.items():
        assert _rows(warehouse_url, f"select {columns} from {view}") == _rows(
            warehouse_url, on_transactions
        ), view
    year = _rows(warehouse_url, "select year, sum(transactions) from mart_tradein_enterprise_year "
                 "group by year")  # fmt: skip
    assert year == [("2024", ROWS), ("2025", 2 * ROWS - 8 - 1)]  # 8 held back, 1 order twice


def test_rollup_spec_allows_exact_per_period_aggregates_only() -> None:
    import yaml

    from consumption_monitor.feeds.spec import SPEC_DIR, SpecError, parse_feed

    def spec(**change):
        raw = yaml.safe_load((SPEC_DIR / f"{FEED}.yaml").read_text(encoding="utf-8"))
        raw["streams"][0]["rollup"].update(change)
        return raw

    assert parse_feed(spec()).streams[0].rollup.table == "tradein_monthly"
    for change in (
        {"by": ["category", "uscc"]},  # not per period: a load could not rebuild its part
        {"by": ["period", "store"]},  # not a column
        {"measures": [{"name": "avg_price", "agg": "avg", "column": "price"}]},  # not exact
        {"measures": [{"name": "n", "agg": "count", "column": "price"}]},
    ):
        with pytest.raises(SpecError):
            parse_feed(spec(**change))


@pytest.mark.postgres
def test_snapshot_statement_reads_the_rollup_not_the_transactions(pg_database) -> None:
    """On PostgreSQL the trade-in KPIs read core_tradein_monthly only: the count of
    enterprises does not read the year view's `transactions`, so its join to the
    transactions is removed from the plan, whatever their number."""
    from consumption_monitor.indicators.catalog import load_catalog
    from consumption_monitor.indicators.snapshot_query import build_query
    from consumption_monitor.warehouse.migrate import upgrade

    upgrade(pg_database)
    with engine_for(pg_database).connect() as conn:
        views = set(inspect(conn).get_view_names())
        query = build_query(load_catalog(), "2025-12", "postgresql", views)
        plan = "\n".join(r[0] for r in conn.execute(text(f"explain {query.sql}"), query.params))
    assert "core_tradein_monthly" in plan
    assert "core_tradein_transactions" not in plan


def test_transport_faults_retried_to_the_same_batch(feed_server, sqlite_url) -> None:
    from cm_devtools.sample_server.faults import FaultPlan

    clean = extract_step(FEED, PERIOD, url=sqlite_url)
    feed_server.faults.replace(
        FaultPlan.from_specs(
            ["http_500:times=2", "truncate:times=1", "http_429:times=1,retry_after=0"]
        )
    )
    faulty = extract_step(FEED, PERIOD, url=sqlite_url)
    assert faulty["batch_id"] == clean["batch_id"] and faulty["rows"] == {"transactions": ROWS}
    statuses = [r["status"] for r in feed_server.request_log if "tradein" in r["path"]]
    assert 500 in statuses and 429 in statuses


def test_chunk_size_does_not_change_the_outcome(feed_server, sqlite_url, monkeypatch) -> None:
    """Validation summed over chunks of 97 rows equals one chunk: same verdict, counts,
    quarantine and loaded rows (the chunk size is memory, not semantics)."""
    from cm_devtools.sample_server.faults import FaultPlan

    feed_server.faults.replace(FaultPlan.from_specs(["bad_rows:times=-1"]))
    spec = load_feed(FEED)
    small = dataclasses.replace(
        spec, streams=(dataclasses.replace(spec.streams[0], chunk_rows=97),)
    )
    batch = extract_step(small, PERIOD, url=sqlite_url)
    fine = validate_step(small, batch, url=sqlite_url)
    coarse = validate_step(spec, batch, url=sqlite_url)
    for key in ("verdict", "quarantined", "failed_critical", "failed_warning", "rows"):
        assert fine[key] == coarse[key]
    loaded = load_step(small, batch, url=sqlite_url)
    assert loaded["rows"] == {"transactions": ROWS - 8}


def test_prefetched_pages_keep_order_errors_and_stop_early() -> None:
    from consumption_monitor.feeds.engine import ContentDigest, prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        raise ValueError("page 2 broken")

    got = []
    with pytest.raises(ValueError, match="page 2 broken"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]
    pulled = []

    def endless():
        for i in range(10**9):
            pulled.append(i)
            yield i

    for item in prefetched(endless(), depth=2):
        if item == 3:
            break
    assert len(pulled) < 10  # the worker stopped instead of reading the whole source
    # page boundaries do not change the content digest
    records = [{"a": i, "b": "值"} for i in range(7)]
    one, two = ContentDigest(), ContentDigest()
    one.add("s", records)
    for chunk in (records[:3], [], records[3:]):
        two.add("s", chunk)
    assert one.hexdigest() == two.hexdigest()


def test_item_limits_count_in_sale_date_order(sqlite_url: str) -> None:
    """Air conditioners: three per consumer and year, the fourth (latest sold) is held;
    one refrigerator: the later one is held; rows of other consumers are untouched."""
    from consumption_monitor.validation.history import make_checks
    from consumption_monitor.warehouse.migrate import ensure_schema

    ensure_schema(sqlite_url)
    stream = load_feed(FEED).streams[0]
    check = next(
        c for c in make_checks(stream, PERIOD, engine_for(sqlite_url)) if "limit" in c.spec.name
    )
    a, b = "a" * 64, "b" * 64
    chunks = [
        pd.DataFrame(
            {
                "_row": [0, 1, 2],
                "consumer_key": [a, a, b],
                "category": ["空调", "空调", "冰箱"],
                "sale_date": ["2025-03-20", "2025-03-02", "2025-03-09"],
            }
        ),
        pd.DataFrame(
            {
                "_row": [3, 4, 5, 6],
                "consumer_key": [a, a, b, None],
                "category": ["空调", "空调", "冰箱", "冰箱"],
                "sale_date": ["2025-03-05", "2025-03-07", "2025-03-01", "2025-03-01"],
            }
        ),
    ]
    for chunk in chunks:
        check.observe(chunk)
    check.finish()
    assert check.flagged == {0, 2}  # a's 4th AC is the one sold on the 20th; b's later fridge
    assert check.elements == 6
