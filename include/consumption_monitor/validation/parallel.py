"""The chunks of a transaction-scale stream checked side by side in worker processes.

Why: validation was the slowest stage of a trade-in month (~30 s of ~80 s for 1M rows on 2
cores) and ran on one core while the other idled (the feed server is done by then). Each
chunk's typing, derivations and suite need that chunk alone, so forked workers (GX
imported once before the fork) read their chunk's pages from the archive, type it, spool it
for the load and run the suite; the parent takes the results in chunk order and feeds the
checks that need the whole batch (history checks, the stream's profile) from the spooled
frames. The outcome is the same as in one process (``tests/test_parallel_validation.py``
compares the warehouses' digests and the recorded results); ``CM_VALIDATE_WORKERS=1`` is
that plain path. Memory: each worker holds one group of chunks (``check_rows``) at a
time. By default the chunks of a stream of more than one chunk were checked during the
extract already (``validation/early.py``, the same :class:`SuiteGroups`); this module
checks them when they were not (turned off, a worker that failed, another suite since).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from consumption_monitor.common.forking import fork_pool, in_order, worker_count
from consumption_monitor.feeds import typed_cache
from consumption_monitor.feeds.engine import chunk_plan, chunk_records, read_chunk_pages
from consumption_monitor.feeds.frames import iter_frames, joined, pages_frame, to_frame
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.validation.derivation_registry import DeriveContext
from consumption_monitor.validation.runner import (
    Checked,
    ChunkResult,
    Runners,
    derive_frame,
    suite_outcomes,
)

log = logging.getLogger(__name__)
WORKERS_ENV = "CM_VALIDATE_WORKERS"
_RUNNERS: Runners = {}  # in a worker process: its GX runners, built once for every chunk


def workers() -> int:
    """Worker processes for chunk checks: ``CM_VALIDATE_WORKERS``, by default 1 (every chunk
    in this process; ``common.forking``)."""
    return worker_count(WORKERS_ENV)


def group_full(rows: int, stream: StreamSpec) -> bool:
    """Whether chunks holding ``rows`` rows make a group of :class:`SuiteGroups`."""
    return rows >= (stream.check_rows or 0)


class SuiteGroups:
    """Consecutive chunks of a stream checked by one suite run, up to ``stream.check_rows``
    rows (by default one run a chunk).

    Why (1M trade-in rows, 2 cores): GX's cost of a suite run is mostly per expectation, not
    per row. The trade-in suite's 46 checks took 0.95 s on 50,000 rows, 1.33 s on 100,000
    and 1.81 s on 200,000: checked one run a chunk, 20 runs were ~19 s of the worker's
    ~45 s of CPU. Chunks stay the unit of typing, spooling and loading (memory); each chunk
    is derived on its own (derivations are row by row), and the derived frames of a group
    are joined for one run (``feeds.frames.joined``: each Arrow column made contiguous).

    The group's outcomes come with its last chunk and the others carry none: the merge
    (``chunked._merge``) sums outcomes by expectation whatever chunk brings them, and the
    critical failures are keyed by batch row, so the report is the one of one run a chunk
    (``tests/test_parallel_validation.py``). A chunk whose columns or types differ from the
    group's starts a new group: a column missing from one chunk stays missing there."""

    def __init__(self, stream: StreamSpec, period: str, runners: Runners) -> None:
        self.stream, self.period, self.runners = stream, period, runners
        self._parts: list[pd.DataFrame] = []
        self._rows = 0

    def add(self, frame: pd.DataFrame) -> list[ChunkResult]:
        """Derive one typed chunk; the results of the chunks whose group was checked now,
        in order, one per chunk (none while the group fills)."""
        name = self.stream.name
        ctx = DeriveContext(period=self.period, frames={name: frame}, keys={name: self.stream.keys})
        derived = derive_frame(self.stream, frame, ctx)
        done = self.flush() if self._parts and _shape(derived) != _shape(self._parts[0]) else []
        self._parts.append(derived)
        self._rows += len(derived)
        if group_full(self._rows, self.stream):
            done += self.flush()
        return done

    def flush(self) -> list[ChunkResult]:
        """Check the chunks held; their results, one per chunk."""
        count = len(self._parts)
        if not count:
            return []
        frame = self._parts[0] if count == 1 else joined(self._parts)
        self._parts, self._rows = [], 0
        result = suite_outcomes(self.stream, frame, self.period, self.runners)
        empty: list[ChunkResult] = [([], {}) for _ in range(count - 1)]
        return [*empty, result]


def _shape(frame: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    return tuple((str(c), str(t)) for c, t in frame.dtypes.items())


@dataclass(frozen=True)
class ChunkJob:
    feed: FeedSpec
    stream: StreamSpec
    period: str
    batch_dir: Path
    first: int
    pages: list[dict[str, Any]]
    file: Path


def typed_chunk(job: ChunkJob) -> pd.DataFrame:
    """In a worker: read, type and spool one chunk (JSON pages parsed by Arrow's reader
    into the columns' types where that gives the frame typing their records gives,
    ``frames.pages_frame``)."""
    pages = read_chunk_pages(job.batch_dir, job.pages)
    frame = None
    if all(record.format == "json" for record, _ in pages):
        frame = pages_frame(job.stream, [body for _, body in pages], job.first)
    if frame is None:
        frame = to_frame(job.stream, chunk_records(job.feed, pages), job.first)
    typed_cache.write_chunk(job.file, frame)
    return frame


def check_group(jobs: list[ChunkJob]) -> list[ChunkResult]:
    """In a worker: the chunks of one group read, typed and spooled, then checked; one
    result per chunk."""
    groups = SuiteGroups(jobs[0].stream, jobs[0].period, _RUNNERS)
    results = [result for job in jobs for result in groups.add(typed_chunk(job))]
    return results + groups.flush()


def _grouped(jobs: list[ChunkJob], stream: StreamSpec) -> list[list[ChunkJob]]:
    """The jobs cut into the groups :class:`SuiteGroups` would make of them, by the rows
    their pages hold."""
    groups: list[list[ChunkJob]] = [[]]
    rows = 0
    for job in jobs:
        groups[-1].append(job)
        rows += sum(int(page["rows"]) for page in job.pages)
        if group_full(rows, stream):
            groups.append([])
            rows = 0
    return [group for group in groups if group]


def checked_chunks(
    feed: FeedSpec,
    stream: StreamSpec,
    period: str,
    batch_dir: Path,
    spool: typed_cache.Spool,
    runners: Runners,
) -> Iterator[Checked]:
    """Every chunk of the stream in order, typed and spooled, with its suite's outcomes and
    critical failures by row (:class:`SuiteGroups`); closes the spool at the end."""
    n = workers()
    plan = chunk_plan(batch_dir, stream.name, stream.chunk_rows or 10**9) if n > 1 else None
    if plan is None or len(plan) < 2:
        groups = SuiteGroups(stream, period, runners)
        held: deque[pd.DataFrame] = deque()  # the chunks of the group being filled
        for frame in iter_frames(feed, batch_dir, stream):
            spool.write(frame)  # typed once: the load reads these back
            held.append(frame)
            for result in groups.add(frame):
                yield (held.popleft(), *result)
        for result in groups.flush():
            yield (held.popleft(), *result)
        spool.close()
        return
    import great_expectations  # noqa: F401  imported once, before the fork: workers share it

    jobs = [
        ChunkJob(feed, stream, period, batch_dir, first, pages, spool.chunk_file(i))
        for i, (first, pages) in enumerate(plan)
    ]
    groups = _grouped(jobs, stream)
    n = min(n, len(groups))
    log.info(
        "checking %s %s: %d chunks in %d groups, %d worker processes",
        feed.name, period, len(jobs), len(groups), n,
    )  # fmt: skip
    with fork_pool(n) as pool:
        checked = in_order(pool, check_group, groups, ahead=2 * n)
        for group, results in zip(groups, checked, strict=True):
            for job, (outcomes, rows) in zip(group, results, strict=True):
                yield typed_cache.read_chunk(job.file), outcomes, rows
    spool.close(len(jobs))
