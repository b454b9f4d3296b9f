"""Chunk checks run while a transaction-scale stream is extracted (``validation/early.py``)
are only a cache: a worker that dies leaves the checks to the validate step, outcomes
checked with another suite are not taken, a failed extract leaves neither a spool nor a
process behind, spools of batches never loaded go after a day, and the fingerprint is the
same in every process."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from cm_devtools.sample_server import tradein_data
from consumption_monitor.feeds import typed_cache
from consumption_monitor.feeds.errors import FeedError
from consumption_monitor.feeds.spec import FeedSpec, load_feed
from consumption_monitor.pipeline.steps import extract_step, load_step, run_period, validate_step
from consumption_monitor.validation import early
from consumption_monitor.warehouse.db import engine_for

FEED = "tradein_transactions"
ROWS = 2400  # three pages of 1,000 rows
REPO = Path(__file__).resolve().parent.parent


def _spec() -> FeedSpec:
    spec = load_feed(FEED)
    stream = dataclasses.replace(spec.streams[0], chunk_rows=500)  # a chunk a page
    return dataclasses.replace(spec, streams=(stream,))


def _expectation_types(url: str) -> list[str]:
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            text("select expectation_type from audit_validation_result order by expectation_index")
        )
        return [r[0] for r in rows]


def _result_at(url: str, index: int) -> tuple:
    """The recorded type, success and unexpected count of the suite's expectation ``index``."""
    with engine_for(url).connect() as conn:
        row = conn.execute(
            text("select expectation_type, success, unexpected_count from audit_validation_result "
                 "where expectation_index = :i"), {"i": index},
        ).one()  # fmt: skip
    return tuple(row)


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


@pytest.fixture(autouse=True)
def _rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tradein_data.ROWS_ENV, str(ROWS))
    monkeypatch.setenv(early.ENABLED_ENV, "1")


def _edited_suites(tmp_path: Path) -> tuple[Path, int]:
    """A copy of the suites with a warning added to the trade-in suite (every row fails
    it); returns the folder and the added expectation's index."""
    suites = tmp_path / "expectations"
    suites.mkdir()
    for file in (REPO / "expectations").iterdir():
        (suites / file.name).write_bytes(file.read_bytes())
    suite_file = suites / f"{FEED}.json"
    suite = json.loads(suite_file.read_text(encoding="utf-8"))
    suite["expectations"].append(
        {"type": "expect_column_value_lengths_to_be_between", "severity": "warning",
         "kwargs": {"column": "enterprise_name", "min_value": 0, "max_value": 2},
         "meta": {"description": "企业名称不超过 2 个字（测试用）"}}
    )  # fmt: skip
    suite_file.write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    return suites, len(suite["expectations"]) - 1


def test_a_worker_killed_mid_extract_leaves_the_checks_to_the_validate_step(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Killed(early.EarlyChecks):  # the worker dies (say, the OOM killer) after a page
        def page_archived(self, stream, record) -> None:
            super().page_archived(stream, record)
            if self._worker is not None:
                self._worker.process.kill()
                self._worker.process.wait()

    monkeypatch.setattr(early, "EarlyChecks", Killed)
    caplog.set_level(logging.INFO)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    out = run_period(_spec(), "2025-03", url=url)
    said = _said(caplog)
    assert out["load"]["rows"]["transactions"] == ROWS
    assert any("the validate step will check every chunk" in m for m in said), said
    assert not any("taken from the extract" in m for m in said)
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    monkeypatch.setenv(early.ENABLED_ENV, "0")
    run_period(_spec(), "2025-03", url=plain)
    assert _expectation_types(url) == _expectation_types(plain)


def test_outcomes_checked_with_another_suite_are_not_taken(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    batch = extract_step(_spec(), "2025-03", url=url)
    cache = typed_cache.cache_dir(FEED, "2025-03", batch["batch_id"], "transactions")
    assert json.loads((cache / early.MARKER).read_text())["chunks"] == 3
    # the suite is edited between the extract and the validate task
    suites, before = _edited_suites(tmp_path)
    monkeypatch.setenv("CM_EXPECTATIONS_DIR", str(suites))
    caplog.set_level(logging.INFO)
    validate_step(_spec(), batch, url=url)
    said = _said(caplog)
    assert any("checked during the extract are out of date" in m for m in said), said
    assert not any("taken from the extract" in m for m in said)
    # the added expectation ran on every chunk
    assert _result_at(url, before) == ("expect_column_value_lengths_to_be_between", False, ROWS)
    assert not (cache / early.MARKER).exists()  # the validate step's own spool replaced it


def test_a_suite_edited_while_the_worker_checks_is_not_taken_as_checked(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The spool's fingerprint is what the worker started with: a suite edited (or code
    deployed) during a long extract used to be fingerprinted at the extract's end, so the
    worker's outcomes, checked with the suite as it was, passed as current."""
    suites, added = _edited_suites(tmp_path)

    class EditedMeanwhile(early.EarlyChecks):
        def page_archived(self, stream, record) -> None:
            super().page_archived(stream, record)
            if self._worker is not None:  # the worker runs with the suite as it was
                monkeypatch.setenv("CM_EXPECTATIONS_DIR", str(suites))

    monkeypatch.setattr(early, "EarlyChecks", EditedMeanwhile)
    caplog.set_level(logging.INFO)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    run_period(_spec(), "2025-03", url=url)
    said = _said(caplog)
    assert any("3 chunks checked during the extract" in m for m in said), said
    assert any("checked during the extract are out of date" in m for m in said), said
    assert not any("taken from the extract" in m for m in said)
    # the edited suite ran on every row
    assert _result_at(url, added) == ("expect_column_value_lengths_to_be_between", False, ROWS)


def test_a_failed_extract_leaves_no_spool_and_no_worker(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[early.EarlyChecks] = []

    class Seen(early.EarlyChecks):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

        def page_archived(self, stream, record) -> None:
            super().page_archived(stream, record)
            self.worker_seen = self._worker or getattr(self, "worker_seen", None)

    monkeypatch.setattr(early, "EarlyChecks", Seen)
    feed_server.faults.add("cursor_loop", period="2025-03", times=-1)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with pytest.raises(FeedError):
        extract_step(_spec(), "2025-03", url=url)
    (checks,) = started
    assert checks.worker_seen is not None  # a worker was running when the extract failed
    assert checks.worker_seen.process.poll() is not None
    spools = Path(os.environ["CM_DATA_DIR"]) / "typed_cache"
    assert not any(p.is_file() for p in spools.rglob("*")) if spools.exists() else True


@pytest.mark.parametrize("case", ["off", "within one chunk", "two chunks"])
def test_a_worker_only_for_a_stream_of_more_than_one_chunk(
    case: str, feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec()
    if case == "off":
        monkeypatch.setenv(early.ENABLED_ENV, "off")
    else:  # pages of 1,000, 1,000 and 400 rows
        rows = ROWS + 1 if case == "within one chunk" else 2000
        stream = dataclasses.replace(spec.streams[0], chunk_rows=rows)
        spec = dataclasses.replace(spec, streams=(stream,))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    batch = extract_step(spec, "2025-03", url=url)
    marker = (
        typed_cache.cache_dir(FEED, "2025-03", batch["batch_id"], "transactions") / early.MARKER
    )
    if case == "two chunks":
        assert json.loads(marker.read_text())["chunks"] == 2
    else:
        assert not marker.exists()
    validate_step(spec, batch, url=url)
    assert load_step(spec, batch, url=url)["rows"]["transactions"] == ROWS


@pytest.mark.parametrize("chunk_rows", [2000, ROWS + 1])
def test_a_stream_announcing_more_than_one_chunk_starts_its_worker_at_its_first_page(
    chunk_rows: int, feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page's total (2,400 rows) says the stream holds more than one chunk of
    2,000: the worker starts then, before that page is archived (its import overlaps the
    first pages), not with the first whole chunk (the second page); a stream within one
    chunk starts none."""
    running: list[bool] = []  # whether a worker ran when each page arrived

    class Watched(early.EarlyChecks):
        def page_archived(self, stream, record) -> None:
            running.append(self._worker is not None)
            super().page_archived(stream, record)

    monkeypatch.setattr(early, "EarlyChecks", Watched)
    spec = _spec()
    stream = dataclasses.replace(spec.streams[0], chunk_rows=chunk_rows)
    spec = dataclasses.replace(spec, streams=(stream,))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    batch = extract_step(spec, "2025-03", url=url)
    marker = typed_cache.cache_dir(FEED, "2025-03", batch["batch_id"], "transactions")
    if chunk_rows == 2000:
        assert running == [True, True, True]
        assert json.loads((marker / early.MARKER).read_text())["chunks"] == 2
    else:
        assert running == [False, False, False]
        assert not (marker / early.MARKER).exists()


def test_the_fingerprint_is_the_same_in_every_process() -> None:
    code = (
        "from consumption_monitor.feeds.spec import load_feed;"
        "from consumption_monitor.validation.early import fingerprint;"
        f"print(fingerprint(load_feed({FEED!r}).streams[0], '2025-03'))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    stream = load_feed(FEED).streams[0]
    assert prints == {early.fingerprint(stream, "2025-03")}
    assert early.fingerprint(stream, "2025-04") not in prints


def test_spools_of_batches_never_loaded_are_removed_after_a_day(
    feed_server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    period_dir = typed_cache.batch_dir(FEED, "2025-03", "x").parent
    old, fresh, died = period_dir / "0ld", period_dir / "fresh", period_dir / "_incoming" / "dead"
    for folder in (old, fresh, died):
        folder.mkdir(parents=True)
        (folder / "000000.pkl").write_bytes(b"spooled")
    two_days_ago = time.time() - 2 * early.STALE_S
    for folder in (old, died):
        os.utime(folder, (two_days_ago, two_days_ago))
    batch = extract_step(_spec(), "2025-03", url=f"sqlite:///{tmp_path / 'w.db'}")
    left = sorted(p.name for p in period_dir.iterdir())
    assert left == sorted([batch["batch_id"], "fresh"])
