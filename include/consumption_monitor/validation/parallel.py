"""The chunks of a transaction-scale stream checked side by side in worker processes.

Why: validation was the slowest stage of a trade-in month (~30 s of ~80 s for 1M rows on 2
cores) and ran on one core while the other idled (the feed server is done by then). Each
chunk's typing, derivations and suite need that chunk alone, so forked workers (GX
imported once before the fork) read their chunk's pages from the archive, type it, spool it
for the load and run the suite; the parent takes the results in chunk order and feeds the
checks that need the whole batch (history checks, the stream's profile) from the spooled
frames. The outcome is the same as in one process (``tests/test_parallel_validation.py``
compares the warehouses' digests and the recorded results); ``CM_VALIDATE_WORKERS=1`` is
that plain path. Memory: each worker holds one chunk (``chunk_rows``) at a time. By default
the chunks of a stream of more than one chunk were checked during the extract already
(``validation/early.py``, the same :func:`check_chunk`); this module checks them when they
were not (turned off, a worker that failed, another suite since).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from consumption_monitor.common.forking import fork_pool, in_order, worker_count
from consumption_monitor.feeds import typed_cache
from consumption_monitor.feeds.engine import chunk_plan, read_chunk
from consumption_monitor.feeds.frames import iter_frames, to_frame
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.validation.derivation_registry import DeriveContext
from consumption_monitor.validation.runner import Outcome, Runners, _check_stream

log = logging.getLogger(__name__)
WORKERS_ENV = "CM_VALIDATE_WORKERS"
_RUNNERS: Runners = {}  # in a worker process: its GX runners, built once for every chunk

Checked = tuple[pd.DataFrame, list[Outcome], dict[int, list[str]]]


def workers() -> int:
    """Worker processes for chunk checks: ``CM_VALIDATE_WORKERS``, by default 1 (every chunk
    in this process; ``common.forking``)."""
    return worker_count(WORKERS_ENV)


@dataclass(frozen=True)
class ChunkJob:
    feed: FeedSpec
    stream: StreamSpec
    period: str
    batch_dir: Path
    first: int
    pages: list[dict[str, Any]]
    file: Path


def _check(stream: StreamSpec, frame: pd.DataFrame, period: str, runners: Runners):
    ctx = DeriveContext(period=period, frames={stream.name: frame}, keys={stream.name: stream.keys})
    return _check_stream(stream, frame, ctx, period, runners)


def check_chunk(job: ChunkJob) -> tuple[list[Outcome], dict[int, list[str]]]:
    """In a worker: read, type and spool one chunk, then run its suite."""
    records = read_chunk(job.feed, job.batch_dir, job.pages)
    frame = to_frame(job.stream, records, job.first)
    typed_cache.write_chunk(job.file, frame)
    return _check(job.stream, frame, job.period, _RUNNERS)


def checked_chunks(
    feed: FeedSpec,
    stream: StreamSpec,
    period: str,
    batch_dir: Path,
    spool: typed_cache.Spool,
    runners: Runners,
) -> Iterator[Checked]:
    """Every chunk of the stream in order, typed and spooled, with its suite's outcomes and
    critical failures by row; closes the spool at the end."""
    n = workers()
    plan = chunk_plan(batch_dir, stream.name, stream.chunk_rows or 10**9) if n > 1 else None
    if plan is None or len(plan) < 2:
        for frame in iter_frames(feed, batch_dir, stream):
            spool.write(frame)  # typed once: the load reads these back
            yield (frame, *_check(stream, frame, period, runners))
        spool.close()
        return
    import great_expectations  # noqa: F401  imported once, before the fork: workers share it

    jobs = [
        ChunkJob(feed, stream, period, batch_dir, first, pages, spool.chunk_file(i))
        for i, (first, pages) in enumerate(plan)
    ]
    n = min(n, len(jobs))
    log.info("checking %s %s: %d chunks in %d worker processes", feed.name, period, len(jobs), n)
    with fork_pool(n) as pool:
        checked = in_order(pool, check_chunk, jobs, ahead=2 * n)
        for job, (outcomes, rows) in zip(jobs, checked, strict=True):
            yield typed_cache.read_chunk(job.file), outcomes, rows
    spool.close(len(jobs))
