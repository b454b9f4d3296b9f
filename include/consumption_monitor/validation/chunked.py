"""Validation of transaction-scale streams in bounded chunks.

Why: a province's month is millions of rows; a whole-period DataFrame (and GX's copies of
it) would grow with the volume. Here each chunk of ``stream.chunk_rows`` archived records is
typed, derived and run through the same suite and severity policy as a small feed; the
per-chunk results are summed into one outcome per expectation (``mostly`` applied to the
totals), and the checks that need every chunk or the warehouse (history checks) run
beside them. Only quarantined rows' raw values are kept, so memory is bounded by the chunk
plus compact keys.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from consumption_monitor.feeds import typed_cache
from consumption_monitor.feeds.engine import iter_chunks
from consumption_monitor.feeds.frames import to_frame
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.validation import early
from consumption_monitor.validation.causes import StreamProfile, diagnose
from consumption_monitor.validation.derivation_registry import DeriveContext
from consumption_monitor.validation.history import HistoryCheck, make_checks
from consumption_monitor.validation.parallel import checked_chunks
from consumption_monitor.validation.runner import (
    SAMPLE_SIZE,
    Outcome,
    Runners,
    ValidationReport,
    _check_stream,
)

log = logging.getLogger(__name__)
DEFAULT_MOSTLY = 0.9

Quarantined = dict[str, dict[int, dict[str, Any]]]  # stream -> row -> record as archived


def _merge(total: Outcome | None, part: Outcome) -> Outcome:
    """Sum two chunks' results of one expectation; success re-decided on the totals as GX
    decides it: ``unexpected_percent`` and ``mostly`` over the values the check did not skip
    as null (``missing_count``). Counted over every row, as before 2026-12-01, a column
    check with ``mostly: 0.9`` passed on a chunked month with 1 bad value of 9 beside 11
    nulls, which GX fails on the same rows: the verdict depended on the chunking."""
    if total is None:
        return replace(part, unexpected_rows=list(part.unexpected_rows))
    elements = (total.element_count or 0) + (part.element_count or 0)
    unexpected = (total.unexpected_count or 0) + (part.unexpected_count or 0)
    if total.missing_count is not None or part.missing_count is not None:
        total.missing_count = (total.missing_count or 0) + (part.missing_count or 0)
    checked = elements - (total.missing_count or 0)
    total.element_count = elements
    total.unexpected_count = unexpected
    total.unexpected_percent = 100.0 * unexpected / checked if checked else 0.0
    total.sample = (total.sample + part.sample)[:SAMPLE_SIZE]
    total.unexpected_rows = total.unexpected_rows + part.unexpected_rows
    total.exception = total.exception or part.exception
    mostly = total.kwargs.get("mostly")
    if mostly is not None and total.exception is None and checked:
        total.success = (1 - unexpected / checked) >= float(mostly)
    else:
        total.success = total.success and part.success
    return total


def _history_outcome(index: int, stream: StreamSpec, check: HistoryCheck) -> Outcome:
    kwargs = check.spec.kwargs
    mostly = float(kwargs.get("mostly", DEFAULT_MOSTLY))
    bad, elements = len(check.flagged), check.elements
    return Outcome(
        stream=stream.name,
        suite=stream.suite_name,
        index=index,
        expectation_type=check.spec.name,
        column=kwargs.get("column"),
        severity=check.spec.severity,
        description=check.spec.description,
        success=(1 - bad / elements) >= mostly if elements else True,
        element_count=elements,
        unexpected_count=bad,
        unexpected_percent=100.0 * bad / elements if elements else 0.0,
        sample=[str(v) for v in check.sample[:SAMPLE_SIZE]],
        kwargs=kwargs,
    )


def validate_chunked(
    feed: FeedSpec,
    period: str,
    batch_id: str,
    batch_dir: Path,
    engine: Engine,
    extracted: dict[str, int] | None = None,
) -> tuple[ValidationReport, Quarantined]:
    """Run every stream's suite chunk by chunk plus its history checks; returns the report
    and the raw records of the quarantined rows (for ``audit_quarantine``). ``extracted``:
    rows per stream as the extract counted them (the history checks size their arrays)."""
    outcomes: list[Outcome] = []
    quarantine: dict[str, dict[int, list[str]]] = {}
    kept: Quarantined = {}
    rows: dict[str, int] = {}
    profiles: dict[str, StreamProfile] = {}
    for stream in feed.streams:
        merged: dict[int, Outcome] = {}
        failed: dict[int, list[str]] = {}
        checks = make_checks(stream, period, engine, (extracted or {}).get(stream.name, 0))
        runners: Runners = {}  # GX runners built once per batch, not per chunk
        count = 0
        profiles[stream.name] = seen = StreamProfile()
        path = typed_cache.cache_dir(feed.name, period, batch_id, stream.name)
        chunks = early.checked(stream, period, path)  # checked while it was extracted
        if chunks is None:
            spool = typed_cache.Spool(path)
            chunks = checked_chunks(feed, stream, period, batch_dir, spool, runners)
        for i, (frame, chunk_outcomes, chunk_rows) in enumerate(chunks):
            count += len(frame)
            seen.observe(frame)
            for outcome in chunk_outcomes:
                merged[outcome.index] = _merge(merged.get(outcome.index), outcome)
            for row, labels in chunk_rows.items():
                failed.setdefault(row, []).extend(labels)
            for check in checks:
                check.observe(frame)
            log.info("validated %s %s chunk %d: %d rows", feed.name, period, i + 1, len(frame))
        if count == 0:  # an empty period still meets its suite (row count, columns)
            ctx = DeriveContext(period=period, frames={}, keys={})
            empty = to_frame(stream, [])
            seen.observe(empty)
            chunk_outcomes, _ = _check_stream(stream, empty, ctx, period)
            merged = {o.index: o for o in chunk_outcomes}
        stream_outcomes = [merged[k] for k in sorted(merged)]
        for outcome in stream_outcomes:
            outcome.unexpected_rows = []  # summarised by quarantine; not kept per outcome
        base = 1 + max(merged, default=-1)
        for j, check in enumerate(checks):
            check.finish()
            outcome = _history_outcome(base + j, stream, check)
            stream_outcomes.append(outcome)
            if check.spec.severity == "critical":
                for row in check.flagged:
                    failed.setdefault(row, []).append(outcome.label())
        outcomes.extend(stream_outcomes)
        quarantine[stream.name] = dict(sorted(failed.items()))
        kept[stream.name] = _records_of(feed, batch_dir, stream, set(failed))
        rows[stream.name] = count
    report = ValidationReport(
        feed=feed.name,
        period=period,
        batch_id=batch_id,
        outcomes=outcomes,
        quarantine=quarantine,
        rows=rows,
        entity_keys={s.name: s.audit_key for s in feed.streams if s.audit_key},
        causes=diagnose(feed, profiles, outcomes),
    )
    log.info("validated %s %s batch %s: %s", feed.name, period, batch_id, report.summary())
    return report, kept


def _records_of(
    feed: FeedSpec, batch_dir: Path, stream: StreamSpec, wanted: set[int]
) -> dict[int, dict[str, Any]]:
    """The archived records of the ``wanted`` rows, reading only the pages that hold them."""
    out: dict[int, dict[str, Any]] = {}
    if not wanted:
        return out
    for first, records in iter_chunks(feed, batch_dir, stream.name, 1, only_rows=wanted):
        for offset, record in enumerate(records):
            if first + offset in wanted:
                out[first + offset] = record
    return out
