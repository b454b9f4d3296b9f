"""The steps of a feed run, shared by the Airflow DAGs, the CLI and the tests.

Each step takes small, serialisable arguments and returns a small dict, so an Airflow task
is a thin wrapper and XComs stay tiny: the data itself travels through the raw archive and
the warehouse, never through XCom.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consumption_monitor.common import config
from consumption_monitor.common.periods import Period
from consumption_monitor.common.runs import RunContext
from consumption_monitor.feeds import typed_cache
from consumption_monitor.feeds.archive import read_manifest
from consumption_monitor.feeds.engine import ExtractedBatch, extract, read_records
from consumption_monitor.feeds.frames import iter_frames, to_frame
from consumption_monitor.feeds.sources.base import Source
from consumption_monitor.feeds.spec import FeedSpec, load_feed
from consumption_monitor.pipeline.stages import Stopwatch, gather, stage_record
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.failures import LoadFailed, describe
from consumption_monitor.warehouse.loader import (
    current_frame,
    load_batch,
    now,
    record_run,
    register_batch,
)
from consumption_monitor.warehouse.migrate import ensure_schema

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


class BatchRejected(RuntimeError):
    """Validation rejected the batch: nothing was loaded. The message says why."""


def _feed(feed: str | FeedSpec) -> FeedSpec:
    return feed if isinstance(feed, FeedSpec) else load_feed(feed)


def extract_step(
    feed: str | FeedSpec,
    period: str,
    *,
    url: str | None = None,
    source: Source | None = None,
    archive_root: Path | None = None,
    run: RunContext | None = None,
) -> dict[str, Any]:
    """Fetch into the archive and register the batch and its raw pages; the chunks of a
    transaction-scale stream are checked meanwhile (``validation/early.py``)."""
    from consumption_monitor.validation.early import EarlyChecks

    spec = _feed(feed)
    started, watch = now(), Stopwatch()
    ensure_schema(config.warehouse_url(url))
    engine = engine_for(config.warehouse_url(url))
    try:
        early = EarlyChecks(spec, period) if spec.chunked else None
        batch = extract(spec, period, source=source, archive_root=archive_root, observer=early)
    except Exception as exc:
        with engine.begin() as conn:
            record_run(
                conn,
                feed=spec.name,
                period=period,
                step="extract",
                outcome="failed",
                message=str(exc)[:4000],
                started_at=started,
                run=run,
            )
        raise
    pages = read_manifest(batch.path(archive_root))["pages"]
    revision = register_batch(engine, batch, pages, started_at=started, run=run)
    stage = stage_record("extract", spec.name, period, sum(batch.rows.values()), watch)
    return {**batch.to_dict(), "revision": revision, "stage": stage}


def _batch(batch_ref: dict[str, Any]) -> ExtractedBatch:
    """The batch of an extract step's result (less what the extract step added)."""
    return ExtractedBatch.from_dict(
        {k: v for k, v in batch_ref.items() if k not in ("revision", "stage")}
    )


def _frames(spec: FeedSpec, batch: ExtractedBatch, archive_root: Path | None):
    records = read_records(spec, batch.path(archive_root))
    frames = {s.name: to_frame(s, records[s.name]) for s in spec.streams}
    return records, frames


def validate_step(
    feed: str | FeedSpec,
    batch_ref: dict[str, Any],
    *,
    url: str | None = None,
    archive_root: Path | None = None,
    run: RunContext | None = None,
) -> dict[str, Any]:
    """Run the suites; store results and quarantine; raise BatchRejected on a reject."""
    from consumption_monitor.validation.recording import record_validation
    from consumption_monitor.validation.runner import validate_batch

    spec = _feed(feed)
    batch = _batch(batch_ref)
    started, watch = now(), Stopwatch()
    engine = engine_for(config.warehouse_url(url))
    if spec.chunked:  # transaction scale: bounded chunks, history checks in the warehouse
        from consumption_monitor.validation.chunked import validate_chunked

        report, records = validate_chunked(
            spec, batch.period, batch.batch_id, batch.path(archive_root), engine, batch.rows
        )
    else:
        records, frames = _frames(spec, batch, archive_root)
        previous_period = str(Period.parse(batch.period).shift(-1))
        previous = {s.name: current_frame(engine, s, previous_period) for s in spec.streams}
        report = validate_batch(spec, batch.period, batch.batch_id, frames, previous, engine)
    run_id = record_validation(
        engine, report, records, started_at=started, run=run, owner=feed_owner(spec.name)
    )
    summary = {
        **report.summary(),
        "validation_run_id": run_id,
        "report": _write_report(engine, run_id),
    }
    rows = sum(report.rows.values())
    summary["stage"] = stage_record("validate", spec.name, batch.period, rows, watch)
    if report.rejected:
        raise BatchRejected(
            f"{spec.title} {batch.period} 批次 {batch.batch_id} 校验未通过，未入库："
            f"{report.reasons()}"
        )
    return summary


def feed_owner(feed: str) -> str:
    """Who answers for a feed's warnings: the first responsible unit of the first measure
    the feed serves in the measure catalog (review items, ``validation/review.py``)."""
    from consumption_monitor.indicators.catalog import load_catalog

    measures = load_catalog().measures_for_feed(feed)
    units = [u for m in measures for u in m.responsible_units]
    return units[0] if units else "区统计局"


def _write_report(engine, run_id: str) -> str | None:
    """The run's human-readable report; a report that cannot be written must not turn a
    validation into a failure (the results are in the warehouse either way)."""
    from consumption_monitor.validation.reports import write_validation_report

    try:
        return str(write_validation_report(engine, run_id))
    except OSError:
        log.exception("could not write the validation report of run %s", run_id)
        return None


def load_step(
    feed: str | FeedSpec,
    batch_ref: dict[str, Any],
    *,
    url: str | None = None,
    archive_root: Path | None = None,
    run: RunContext | None = None,
) -> dict[str, Any]:
    """Load a validated batch (less its quarantined rows) as the current version.

    Whatever fails (a refused batch, a COPY or constraint error, a disk error) rolls the
    load back, is recorded in ``audit_load_run`` (step load, outcome failed, one line
    without the rows' values) and raises ``LoadFailed`` with that line."""
    spec = _feed(feed)
    batch = _batch(batch_ref)
    engine = engine_for(config.warehouse_url(url))
    started, watch = now(), Stopwatch()
    try:
        result = _load(spec, batch, engine, archive_root, run, started)
        rows = sum(result["rows"].values())
        return {**result, "stage": stage_record("load", spec.name, batch.period, rows, watch)}
    except Exception as exc:
        message, retryable = describe(exc)
        log.error("load %s %s batch %s: %s", spec.name, batch.period, batch.batch_id, message)
        _record_load_failure(engine, spec, batch, message, started, run)
        if isinstance(exc, LoadFailed):  # refused: its own message is already one line
            raise
        raise LoadFailed(message, retryable=retryable) from exc


def _record_load_failure(
    engine: Engine,
    spec: FeedSpec,
    batch: ExtractedBatch,
    message: str,
    started: datetime,
    run: RunContext | None,
) -> None:
    """The failed load in ``audit_load_run``, in its own transaction (the load's was rolled
    back); a warehouse too broken to take it leaves the log line and the raised error."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.begin() as conn:
            record_run(
                conn,
                feed=spec.name,
                period=batch.period,
                step="load",
                outcome="failed",
                batch_id=batch.batch_id,
                message=message,
                started_at=started,
                run=run,
            )
    except SQLAlchemyError as exc:
        log.error("the failed load was not recorded: %s", describe(exc)[0])


def _load(
    spec: FeedSpec,
    batch: ExtractedBatch,
    engine: Engine,
    archive_root: Path | None,
    run: RunContext | None,
    started: datetime,
) -> dict[str, Any]:
    if spec.chunked:  # chunks stream into the COPY: typed by validation, else from the archive
        batch_dir = batch.path(archive_root)
        frames: dict[str, Any] = {
            s.name: typed_cache.read(
                typed_cache.cache_dir(spec.name, batch.period, batch.batch_id, s.name)
            )
            or iter_frames(spec, batch_dir, s)
            for s in spec.streams
        }
    else:
        _, frames = _frames(spec, batch, archive_root)
    result = load_batch(
        engine, spec, batch.period, batch.batch_id, frames, started_at=started, run=run
    ).to_dict()
    if spec.chunked:
        typed_cache.drop(spec.name, batch.period, batch.batch_id)
    return result


def snapshot_step(feed: str | FeedSpec, period: str, *, url: str | None = None) -> dict[str, Any]:
    """Snapshot the KPIs fed by ``feed`` for ``period`` and for the later periods of that
    feed it affects (year to date, computed YoY), so that loading periods in any order ends
    with the same latest snapshots. The snapshot DAG recomputes every KPI likewise."""
    from consumption_monitor.indicators.snapshots import affected_periods, compute_snapshot

    spec = _feed(feed)
    watch = Stopwatch()
    engine = engine_for(config.warehouse_url(url))
    periods = affected_periods(engine, [period], feed=spec.name)
    done = [compute_snapshot(engine, p, feeds=[spec.name]) for p in periods]
    first = next(d for d in done if d["period"] == period)
    return {
        **first,
        "recomputed": [d["period"] for d in done if d["period"] != period],
        "stage": stage_record("snapshot", spec.name, period, None, watch),
    }


def snapshot_periods(periods: list[str], *, url: str | None = None) -> dict[str, Any]:
    """Recompute every KPI of ``periods`` and of the periods they affect (YTD, YoY)."""
    from consumption_monitor.indicators.snapshots import affected_periods, compute_snapshot

    engine = engine_for(config.warehouse_url(url))
    ensure_schema(config.warehouse_url(url))
    done = [compute_snapshot(engine, p) for p in affected_periods(engine, periods)]
    return {
        "periods": [d["period"] for d in done],
        "added": sum(len(d["added"]) for d in done),
        "missing_sources": sorted({k for d in done for k in d["missing_sources"]}),
    }


def report_step(periods: list[str], *, url: str | None = None) -> dict[str, Any] | None:
    """Write the monthly report (HTML + XLSX) of the latest of ``periods``."""
    from consumption_monitor.indicators.report import write_report

    if not periods:
        return None
    return write_report(engine_for(config.warehouse_url(url)), max(periods))


def run_period(
    feed: str | FeedSpec,
    period: str,
    *,
    url: str | None = None,
    source: Source | None = None,
    archive_root: Path | None = None,
    run: RunContext | None = None,
) -> dict[str, Any]:
    """extract → validate → load → snapshot for one period, in one process; ``stages``:
    rows and seconds per stage and end to end."""
    watch = Stopwatch()
    batch = extract_step(feed, period, url=url, source=source, archive_root=archive_root, run=run)
    validation = validate_step(feed, batch, url=url, archive_root=archive_root, run=run)
    load = load_step(feed, batch, url=url, archive_root=archive_root, run=run)
    snap = snapshot_step(feed, period, url=url)
    steps = {"extract": batch, "validate": validation, "load": load, "snapshot": snap}
    return {
        "batch": batch,
        "validation": validation,
        "load": load,
        "snapshot": snap,
        "stages": gather(steps, watch),
    }
