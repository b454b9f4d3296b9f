"""Atomic, idempotent loads per (feed, period).

A batch's id is derived from its content, so loading the same data twice is the same batch.
One transaction per load: register the batch's staging rows (once), make it the current
version of its period (superseding the previous one, which stays in staging and in the audit
trail), and rebuild the period's core rows from staging. Rerunning any period, or a
backfill in any order, therefore ends with the same core and mart tables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, text, update

from consumption_monitor.common.runs import RunContext
from consumption_monitor.feeds.engine import ExtractedBatch
from consumption_monitor.feeds.frames import ROW
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.feeds.text_limits import check_lengths
from consumption_monitor.warehouse import partitions, schema
from consumption_monitor.warehouse.bulk import copy_frames_side_by_side, copy_streams, write_frames
from consumption_monitor.warehouse.failures import LoadFailed

log = logging.getLogger(__name__)


class LoadRefused(LoadFailed):
    """The batch may not be loaded (rejected by validation, or unknown)."""


@dataclass(frozen=True)
class LoadResult:
    feed: str
    period: str
    batch_id: str
    outcome: str  # loaded | unchanged
    rows: dict[str, int]
    superseded: str | None
    revision: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def now() -> datetime:
    return datetime.now(UTC)


def lock_period(conn: Connection, feed: str, period: str) -> None:
    """Serialise writers of one (feed, period). SQLite already holds its write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _period_key(feed, period)})


def try_lock_period(conn: Connection, feed: str, period: str) -> bool:
    """:func:`lock_period` without waiting: False when another transaction holds it (a
    load of that period is running)."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(
        conn.execute(
            text("select pg_try_advisory_xact_lock(:k)"), {"k": _period_key(feed, period)}
        ).scalar()
    )


def _period_key(feed: str, period: str) -> int:
    return zlib.crc32(f"{feed}|{period}".encode())


def record_run(
    conn: Connection,
    *,
    feed: str,
    period: str,
    step: str,
    outcome: str,
    started_at: datetime,
    batch_id: str | None = None,
    message: str | None = None,
    run: RunContext | None = None,
) -> str:
    run = run or RunContext()
    run_id = uuid.uuid4().hex
    conn.execute(
        insert(schema.audit_load_run).values(
            run_id=run_id,
            feed=feed,
            period=period,
            step=step,
            batch_id=batch_id,
            outcome=outcome,
            message=message,
            started_at=started_at,
            finished_at=now(),
            dag_id=run.dag_id,
            dag_run_id=run.dag_run_id,
            task_id=run.task_id,
            try_number=run.try_number,
        )
    )
    return run_id


def register_batch(
    engine: Engine,
    batch: ExtractedBatch,
    pages: list[dict[str, Any]],
    *,
    started_at: datetime,
    run: RunContext | None = None,
) -> int:
    """Record an extracted batch and its raw pages (once per content); returns its revision."""
    with engine.begin() as conn:
        lock_period(conn, batch.feed, batch.period)
        existing = conn.execute(
            select(schema.audit_load_batch.c.revision).where(
                schema.audit_load_batch.c.batch_id == batch.batch_id
            )
        ).scalar()
        if existing is None:
            revision = 1 + (
                conn.execute(
                    select(func.count()).where(
                        and_(
                            schema.audit_load_batch.c.feed == batch.feed,
                            schema.audit_load_batch.c.period == batch.period,
                        )
                    )
                ).scalar()
                or 0
            )
            conn.execute(
                insert(schema.audit_load_batch).values(
                    batch_id=batch.batch_id,
                    feed=batch.feed,
                    period=batch.period,
                    revision=revision,
                    content_sha256=batch.content_sha256,
                    archive_dir=batch.archive_dir,
                    status="extracted",
                    is_current=False,
                    rows_received=sum(batch.rows.values()),
                    first_seen_at=now(),
                )
            )
            conn.execute(
                insert(schema.raw_payload),
                [
                    {
                        "batch_id": batch.batch_id,
                        "stream": p["stream"],
                        "page_no": p["number"],
                        "feed": batch.feed,
                        "period": batch.period,
                        "archive_path": f"{batch.archive_dir}/{p['file']}",
                        "sha256": p["sha256"],
                        "bytes": p["bytes"],
                        "url": p["url"],
                        "params": json.dumps(p["params"], ensure_ascii=False),
                        "http_status": p["status"],
                        "received_at": datetime.fromisoformat(p["received_at"]),
                        "received_sha256": p.get("received_sha256"),
                    }
                    for p in pages
                ],
            )
        else:
            revision = existing
        record_run(
            conn,
            feed=batch.feed,
            period=batch.period,
            step="extract",
            outcome="extracted" if existing is None else "unchanged",
            batch_id=batch.batch_id,
            started_at=started_at,
            run=run,
            message=f"rows {batch.rows}, {batch.pages} pages, {batch.bytes} bytes"
            + "".join(f"; {note}" for note in batch.notes),
        )
    return revision


def _loadable(
    stream: StreamSpec, frame: pd.DataFrame, batch_id: str, quarantined: set[int]
) -> pd.DataFrame:
    """The frame's rows that load (the quarantined ones held back) with a ``batch_id``
    column; the writers pick columns by name (``_load_columns``)."""
    keep = frame[~frame[ROW].isin(quarantined)] if quarantined else frame
    # the spec's lengths hold on every backend (SQLite stores any text): refuse, as
    # PostgreSQL would, text the validation let through (e.g. a spec changed since)
    check_lengths(stream, keep, ROW)
    names = [c for c in stream.column_names if c in keep.columns]
    return keep[names].assign(batch_id=batch_id)


def _load_columns(stream: StreamSpec) -> list[str]:
    """The columns a stream's staging and core tables are written with."""
    return ["batch_id", *stream.column_names]


def quarantined_rows(conn: Connection, batch_id: str, stream: str) -> set[int]:
    """Row numbers the batch's validation held back in quarantine."""
    q = schema.audit_quarantine
    return set(
        conn.execute(
            select(q.c.row_number).where(q.c.batch_id == batch_id, q.c.stream == stream)
        ).scalars()
    )


def load_batch(
    engine: Engine,
    feed: FeedSpec,
    period: str,
    batch_id: str,
    frames: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
    *,
    started_at: datetime | None = None,
    run: RunContext | None = None,
) -> LoadResult:
    """Make ``batch_id`` the current version of (feed, period), atomically."""
    started_at = started_at or now()
    built: list[str] = []  # month build tables committed on side connections
    try:
        with engine.begin() as conn:
            lock_period(conn, feed.name, period)
            revision = _loadable_revision(conn, feed, period, batch_id)
            counts = _load_streams(conn, feed, period, batch_id, frames, built)
            previous = _make_current(conn, feed, period, batch_id, counts)
            superseded = previous if previous not in (None, batch_id) else None
            outcome = "loaded" if previous != batch_id else "unchanged"
            record_run(
                conn,
                feed=feed.name,
                period=period,
                step="load",
                outcome=outcome,
                batch_id=batch_id,
                started_at=started_at,
                run=run,
                message=f"rows {counts}" + (f", superseded {superseded}" if superseded else ""),
            )
    except BaseException:
        for name in built:  # not attached: the transaction that would have rolled back
            with contextlib.suppress(Exception):
                partitions.drop_table(engine, name)
        raise
    log.info("load %s %s batch %s: %s %s", feed.name, period, batch_id, outcome, counts)
    return LoadResult(feed.name, period, batch_id, outcome, counts, superseded, revision)


def _loadable_revision(conn: Connection, feed: FeedSpec, period: str, batch_id: str) -> int:
    """The batch's revision; refuses a batch never extracted, not validated or rejected."""
    batch = schema.audit_load_batch
    row = conn.execute(
        select(batch.c.status, batch.c.verdict, batch.c.revision).where(
            batch.c.batch_id == batch_id
        )
    ).first()
    if row is None:
        raise LoadRefused(f"{feed.name} {period}: batch {batch_id} was never extracted")
    if row.verdict is None or row.verdict == "rejected":
        raise LoadRefused(
            f"{feed.name} {period}: batch {batch_id} is "
            f"{'rejected by validation' if row.verdict else 'not validated'}; nothing loaded"
        )
    return row.revision


def _load_streams(
    conn: Connection,
    feed: FeedSpec,
    period: str,
    batch_id: str,
    frames: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
    built: list[str],
) -> dict[str, int]:
    """Rebuild the period's core rows (and rollups) of every stream; core rows per stream.
    The month build tables made on side connections are added to ``built``."""
    counts: dict[str, int] = {}
    for stream in feed.streams:
        core = schema.core(stream)
        if partitions.applies(conn, stream):
            counts[stream.name] = _load_partition(
                conn, stream, batch_id, frames[stream.name], feed.period_field, period, built
            )
            continue
        if stream.staging:
            _load_via_staging(
                conn, stream, batch_id, frames[stream.name], feed.period_field, period
            )
        else:
            _load_direct(conn, stream, batch_id, frames[stream.name], feed.period_field, period)
        refresh_rollup(conn, stream, feed.period_field, period)
        # rowcount of INSERT ... SELECT is not reliable across drivers: count instead
        counts[stream.name] = conn.execute(
            select(func.count()).select_from(core).where(core.c[feed.period_field] == period)
        ).scalar_one()
    return counts


def _make_current(
    conn: Connection, feed: FeedSpec, period: str, batch_id: str, counts: dict[str, int]
) -> str | None:
    """Mark the batch current (superseding the previous current one); returns the batch
    that was current before (``batch_id`` itself when nothing changed)."""
    batch = schema.audit_load_batch
    previous = conn.execute(
        select(batch.c.batch_id).where(
            and_(batch.c.feed == feed.name, batch.c.period == period, batch.c.is_current)
        )
    ).scalar()
    if previous == batch_id:
        return previous
    at = now()
    if previous is not None:
        conn.execute(
            update(batch)
            .where(batch.c.batch_id == previous)
            .values(
                is_current=False,
                status="superseded",
                superseded_at=at,
                superseded_by=batch_id,
            )
        )
    conn.execute(
        update(batch)
        .where(batch.c.batch_id == batch_id)
        .values(
            is_current=True,
            status="loaded",
            loaded_at=at,
            superseded_at=None,
            superseded_by=None,
            rows_loaded=sum(counts.values()),
        )
    )
    return previous


def _load_via_staging(
    conn: Connection,
    stream: StreamSpec,
    batch_id: str,
    frame: pd.DataFrame,
    period_field: str,
    period: str,
) -> None:
    """Stage the batch once, then rebuild the period's core rows from staging."""
    stg, core = schema.staging(stream), schema.core(stream)
    staged = conn.execute(
        select(func.count()).select_from(stg).where(stg.c.batch_id == batch_id)
    ).scalar()
    if not staged:
        held = quarantined_rows(conn, batch_id, stream.name)
        loadable = _loadable(stream, frame, batch_id, held)
        write_frames(conn, stg, _load_columns(stream), [loadable])
    conn.execute(delete(core).where(core.c[period_field] == period))
    names = stream.column_names
    conn.execute(
        insert(core).from_select(
            [*names, "batch_id"],
            select(*[stg.c[n] for n in names], stg.c.batch_id).where(stg.c.batch_id == batch_id),
        )
    )


def _core_frames(
    stream: StreamSpec,
    batch_id: str,
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    held: set[int],
) -> Iterator[pd.DataFrame]:
    """The batch's chunks as core rows (with ``batch_id``), less the quarantined rows; a
    column missing from a chunk loads as null."""
    chunks = [frames] if isinstance(frames, pd.DataFrame) else frames
    for frame in chunks:
        yield _loadable(stream, frame, batch_id, held)


def _load_direct(
    conn: Connection,
    stream: StreamSpec,
    batch_id: str,
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    period_field: str,
    period: str,
) -> None:
    """Transaction-scale streams: delete the period's core rows, then stream the batch's
    chunks into core (one COPY on PostgreSQL), all in the caller's transaction. Row-level
    upserts would cost 6–8× this (shared/perf-baselines.md)."""
    core = schema.core(stream)
    held = quarantined_rows(conn, batch_id, stream.name)
    conn.execute(delete(core).where(core.c[period_field] == period))
    chunks = _core_frames(stream, batch_id, frames, held)
    write_frames(conn, core, _load_columns(stream), chunks)


def _load_partition(
    conn: Connection,
    stream: StreamSpec,
    batch_id: str,
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    period_field: str,
    period: str,
    built: list[str],
) -> int:
    """Partitioned streams on PostgreSQL: COPY the batch into a standalone table and index
    it on side connections, rebuild the rollup from it in the caller's transaction while
    the indexes build, then swap it in for the period's partition in that transaction
    (``warehouse/partitions.py``); returns the rows loaded. The build table's name goes to
    ``built`` first, so the caller drops it if the load fails."""
    core = schema.core(stream)
    held = quarantined_rows(conn, batch_id, stream.name)
    partitions.drop_orphans(conn, core, period)
    engine = conn.engine
    with engine.begin() as side:
        name = partitions.create_build_table(side, core, period_field, period)
    built.append(name)
    chunks = _core_frames(stream, batch_id, frames, held)
    target = partitions.qualified(name)
    count = copy_frames_side_by_side(engine, target, _load_columns(stream), chunks)
    source = partitions.build_table(name, core)
    key_index = partitions.index_build_table(
        engine,
        core,
        name,
        copy_streams(),
        meanwhile=lambda: refresh_rollup(conn, stream, period_field, period, source),
    )
    partitions.adopt_primary_key(conn, name, key_index)
    partitions.swap_in(conn, core, period, name)
    return count


_AGGREGATES = {"count": lambda column: func.count(), "sum": func.sum, "max": func.max}


def refresh_rollup(
    conn: Connection,
    stream: StreamSpec,
    period_field: str,
    period: str,
    source: Any = None,
) -> None:
    """Rebuild the period's rows of the stream's rollup from its core rows (or from
    ``source``, a partition about to be swapped in), in the caller's transaction: whoever
    sees the new core rows sees the rollup that sums them.

    On PostgreSQL the rows are grouped by hashing (``enable_sort`` off for the statement): a
    rollup has few groups by design, but a month's build table has no statistics yet, and
    the planner sorted its million rows on disk instead (1M trade-in rows, 2026-12-01:
    1.7 s against 0.26 s)."""
    table = schema.rollup(stream)
    if table is None or stream.rollup is None:
        return
    core = source if source is not None else schema.core(stream)
    by = [core.c[name] for name in stream.rollup.by]
    measures = [
        _AGGREGATES[m.agg](core.c[m.column] if m.column else None) for m in stream.rollup.measures
    ]
    conn.execute(delete(table).where(table.c[period_field] == period))
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(text("set local enable_sort = off"))
    query = select(*by, *measures).group_by(*by)
    if source is None:  # a build table holds the period alone (its CHECK): scanned whole
        query = query.where(core.c[period_field] == period)
    conn.execute(
        insert(table).from_select(
            [*stream.rollup.by, *(m.name for m in stream.rollup.measures)], query
        )
    )
    if postgres:
        conn.execute(text("reset enable_sort"))


def current_frame(engine: Engine, stream: StreamSpec, period: str) -> pd.DataFrame:
    """The current core rows of a period (empty when it was never loaded)."""
    core = schema.core(stream)
    with engine.connect() as conn:
        result = conn.execute(select(core).where(core.c.period == period))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
