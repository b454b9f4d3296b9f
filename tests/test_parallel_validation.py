"""The fast paths (pages protected and chunks checked in worker processes; chunks checked
while the stream is extracted, ``validation/early.py``) and the plain path (one process,
the chunks checked by the validate step) of a transaction-scale feed archive the same
pages, give the same batch ids, build the same warehouse and record the same results
(issue 17 §3): pseudonymisation, every check of the suite and the history checks still run,
quarantine included. The plain path checks one chunk a suite run (``check_rows`` unset), the
fast paths a group of chunks a run (``validation.parallel.SuiteGroups``): the same report."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd
import pytest
from sqlalchemy import text

from cm_devtools.sample_server import tradein_data
from consumption_monitor.feeds import protect_workers
from consumption_monitor.feeds.engine import ExtractedBatch, chunk_plan, iter_chunks
from consumption_monitor.feeds.spec import FeedSpec, load_feed
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.validation import early
from consumption_monitor.validation.parallel import WORKERS_ENV
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.digest import warehouse_digest

FEED = "tradein_transactions"
ROWS = 2400
CHUNK = 500  # a chunk a page: three chunks (pages of 1,000 rows)
GROUP = 2000  # fast paths: chunks 1 and 2 checked by one suite run, chunk 3 by another


def _spec(check_rows: int | None = GROUP) -> FeedSpec:
    spec = load_feed(FEED)
    stream = dataclasses.replace(spec.streams[0], chunk_rows=CHUNK, check_rows=check_rows)
    return dataclasses.replace(spec, streams=(stream,))


def _results(url: str) -> dict[str, list[tuple]]:
    queries = {
        "validation": "select stream, expectation_index, expectation_type, column_name, "
        "severity, success, element_count, unexpected_count, sample, kwargs, exception "
        "from audit_validation_result order by period, stream, expectation_index",
        "quarantine": "select period, stream, row_number, failed_expectations, raw_values, "
        "entity_key from audit_quarantine order by period, stream, row_number",
        "batches": "select period, batch_id, content_sha256, verdict, rows_loaded, "
        "rows_quarantined from audit_load_batch order by period",
        "pages": "select period, stream, page_no, sha256, bytes, received_sha256 "
        "from raw_payload order by period, stream, page_no",
    }
    with engine_for(url).connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in queries.items()}


def _build(
    tmp_path, monkeypatch, workers: int, name: str, *, early_checks: bool = False, spec=None
) -> str:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    monkeypatch.setenv("CM_DATA_DIR", str(tmp_path / name))
    monkeypatch.setenv(early.ENABLED_ENV, "1" if early_checks else "0")
    monkeypatch.setenv(WORKERS_ENV, str(workers))
    monkeypatch.setenv(protect_workers.WORKERS_ENV, str(workers))
    spec = spec or _spec()
    for period in ("2025-03", "2025-04"):  # April's history checks read March's rows
        run_period(spec, period, url=url)
    return url


def _plain(feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The plain path's warehouse, with bad rows and personal data among the periods."""
    monkeypatch.setenv(tradein_data.ROWS_ENV, str(ROWS))
    feed_server.faults.add("bad_rows", period="2025-04")
    feed_server.faults.add("personal_data", period="2025-03")
    return _build(tmp_path, monkeypatch, 1, "plain", spec=_spec(check_rows=None))


def _assert_same(plain: str, fast: str) -> None:
    plain_results, fast_results = _results(plain), _results(fast)
    assert fast_results == plain_results
    assert sum(r[5] or 0 for r in plain_results["batches"]) > 0  # quarantine exercised
    assert warehouse_digest(engine_for(fast), exclude_volatile=True) == warehouse_digest(
        engine_for(plain), exclude_volatile=True
    )


def test_worker_processes_build_the_same_warehouse_as_one_process(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plain = _plain(feed_server, tmp_path, monkeypatch)
    caplog.set_level(logging.INFO, logger="consumption_monitor.validation.parallel")
    fast = _build(tmp_path, monkeypatch, 2, "fast")
    said = [r.getMessage() for r in caplog.records]
    assert any("3 chunks in 2 groups, 2 worker processes" in m for m in said), said  # it ran
    assert protect_workers.workers() == 2
    _assert_same(plain, fast)


def test_chunks_checked_during_the_extract_build_the_same_warehouse(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plain = _plain(feed_server, tmp_path, monkeypatch)
    caplog.set_level(logging.INFO, logger="consumption_monitor.validation.early")
    # with protect workers forked while the extract's worker runs (they inherit its pipe)
    fast = _build(tmp_path, monkeypatch, 2, "early", early_checks=True)
    said = [r.getMessage() for r in caplog.records]
    # each period: the extract's worker checked the three chunks, the validate step took them
    assert sum("3 chunks checked during the extract" in m for m in said) == 2, said
    assert sum("outcomes of 3 chunks taken from the extract" in m for m in said) == 2, said
    _assert_same(plain, fast)


def test_chunk_plan_matches_the_chunks_read_in_order(feed_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(tradein_data.ROWS_ENV, str(ROWS))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    out = run_period(_spec(), "2025-03", url=url)
    batch_dir = ExtractedBatch.from_dict(
        {k: v for k, v in out["batch"].items() if k not in ("revision", "stage")}
    ).path()
    for size in (1, 999, CHUNK, 10**9):
        plan = chunk_plan(batch_dir, "transactions", size)
        chunks = list(iter_chunks(_spec(), batch_dir, "transactions", size))
        assert plan is not None
        assert [first for first, _ in plan] == [first for first, _ in chunks]


def test_the_worker_types_the_archived_trade_in_pages_with_arrows_json_reader(
    feed_server, tmp_path, monkeypatch
) -> None:
    """The chunks of a sample trade-in month take ``frames.pages_frame`` (the worker's
    fast way, ``parallel.typed_chunk``), and it gives the frame typing the records gives."""
    from consumption_monitor.feeds.engine import chunk_records, read_chunk_pages
    from consumption_monitor.feeds.frames import pages_frame, to_frame

    monkeypatch.setenv(tradein_data.ROWS_ENV, str(ROWS))
    out = run_period(_spec(), "2025-03", url=f"sqlite:///{tmp_path / 'w.db'}")
    batch_dir = ExtractedBatch.from_dict(
        {k: v for k, v in out["batch"].items() if k not in ("revision", "stage")}
    ).path()
    stream = _spec().streams[0]
    plan = chunk_plan(batch_dir, "transactions", 1000)
    assert plan is not None and len(plan) == 3
    for first, pages in plan:
        read = read_chunk_pages(batch_dir, pages)
        fast = pages_frame(stream, [body for _, body in read], first)
        assert fast is not None
        pd.testing.assert_frame_equal(fast, to_frame(stream, chunk_records(_spec(), read), first))


def _checked_in_groups(chunks: list, check_rows: int | None):
    """The chunks' merged outcomes by index, critical failures by row, and how many
    outcomes each chunk carried, checked with ``check_rows`` (None: one run a chunk)."""
    from consumption_monitor.validation.chunked import _merge
    from consumption_monitor.validation.parallel import SuiteGroups

    stream = dataclasses.replace(load_feed(FEED).streams[0], check_rows=check_rows)
    groups = SuiteGroups(stream, "2025-03", {})
    results = [r for chunk in chunks for r in groups.add(chunk)] + groups.flush()
    assert len(results) == len(chunks)
    outcomes: dict = {}
    failed: dict[int, list[str]] = {}
    for chunk_outcomes, rows in results:
        for o in chunk_outcomes:
            outcomes[o.index] = _merge(outcomes.get(o.index), o)
        for row, labels in rows.items():
            failed.setdefault(row, []).extend(labels)
    for o in outcomes.values():
        o.unexpected_rows = []  # positions in a run's frame; the report keeps batch rows
    return outcomes, failed, [len(outs) for outs, _ in results]


def _chunks(records: list[dict], size: int = 20) -> list:
    from consumption_monitor.feeds.frames import to_frame

    stream = load_feed(FEED).streams[0]
    return [to_frame(stream, records[i : i + size], i) for i in range(0, len(records), size)]


def _records(n: int) -> list[dict]:
    from consumption_monitor.common.periods import Period

    return [tradein_data.row_at(Period.parse("2025-03"), i) for i in range(n)]


def test_a_group_checks_its_chunks_as_one_run_a_chunk_would() -> None:
    """Merged outcomes and critical failures by row of chunks checked in groups equal those
    of one suite run a chunk; a chunk lacking a column starts its own group, where the
    missing column fails (not hidden by the nulls a concatenation would give it)."""
    records = _records(90)
    records[5]["category"] = "不存在的品类"  # a critical failure in the first chunk
    records[47]["price"] = -1
    for record in records[60:]:
        del record["category"]
    chunks = _chunks(records)
    one, one_failed, one_counts = _checked_in_groups(chunks, None)
    grouped, grouped_failed, counts = _checked_in_groups(chunks, 10**6)
    assert counts[:2] == [0, 0] and counts[2] > 0 and counts[3] == 0 and counts[4] > 0
    assert one_counts == [counts[2]] * 3 + [counts[4]] * 2
    assert grouped == one and grouped_failed == one_failed
    assert {5, 47} <= set(one_failed)
    exists = [
        o for o in grouped.values()
        if o.expectation_type == "expect_column_to_exist" and o.column == "category"
    ]  # fmt: skip
    assert len(exists) == 1 and not exists[0].success


def test_mostly_counts_the_values_checked_whatever_the_chunking() -> None:
    """``mostly`` and ``unexpected_percent`` of merged chunks are GX's on the whole batch:
    over the values a column check does not skip as null. Half the groups null and 6 of the
    other 50 unknown: 12 % unexpected, below ``mostly: 0.9`` (over every row it was 6 %, and
    the chunked month passed what one GX run fails)."""
    records = _records(100)
    for i in range(0, 100, 2):
        records[i]["category_group"] = None
    for i in range(1, 13, 2):
        records[i]["category_group"] = "不存在的大类"
    chunks = _chunks(records)
    one_run, _, counts = _checked_in_groups(chunks, 10**6)
    assert counts == [0, 0, 0, 0, len(one_run)]  # all five chunks in one GX run
    per_chunk, _, _ = _checked_in_groups(chunks, None)
    [index] = [
        o.index for o in one_run.values()
        if o.expectation_type == "expect_column_values_to_be_in_set"
        and o.column == "category_group"
    ]  # fmt: skip
    for outcomes in (one_run, per_chunk):
        o = outcomes[index]
        assert (o.element_count, o.missing_count, o.unexpected_count) == (100, 50, 6)
        assert o.unexpected_percent == pytest.approx(12.0)
        assert not o.success
