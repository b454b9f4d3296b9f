"""The generic feed engine: extract any feed spec for a period into the raw archive, and
turn archived pages back into record lists per stream.

Extraction is the only step that talks to the source. Validation and loading read the
archive, so they can run in other processes (or on other workers) and can be repeated
without calling the source again.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from consumption_monitor.common import config
from consumption_monitor.common.periods import Period, last_full_month
from consumption_monitor.feeds import jsoncodec, protect_workers
from consumption_monitor.feeds.archive import (
    Attempt,
    PageRecord,
    iter_pages,
    read_manifest,
    read_pages,
)
from consumption_monitor.feeds.errors import (
    FeedError,
    LimitExceeded,
    PayloadError,
    PeriodNotPublished,
)
from consumption_monitor.feeds.pii import Protection, Pseudonymiser, canonical_records, pii_key
from consumption_monitor.feeds.sources.base import Page, Source
from consumption_monitor.feeds.sources.registry import source_for
from consumption_monitor.feeds.spec import ExtractLimits, FeedSpec, StreamSpec

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ExtractedBatch:
    """What extraction hands to the next step: small enough for an Airflow XCom."""

    feed: str
    period: str
    batch_id: str
    content_sha256: str
    archive_dir: str  # relative to the archive root
    rows: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    bytes: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. files a file source rejected

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "period": self.period,
            "batch_id": self.batch_id,
            "content_sha256": self.content_sha256,
            "archive_dir": self.archive_dir,
            "rows": dict(self.rows),
            "pages": self.pages,
            "bytes": self.bytes,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractedBatch:
        return cls(**data)

    def path(self, archive_root: Path | None = None) -> Path:
        return (archive_root or config.archive_dir()) / self.archive_dir


class ExtractObserver:
    """Told how an extraction goes, page by page (the chunk checks that run while a stream
    is extracted, ``validation/early.py``). These hooks do nothing; an observer's own
    failure must never fail the extraction."""

    def stream_started(self, stream: StreamSpec, attempt: Attempt) -> None:
        """Before the stream's first page is fetched (no fetching thread runs yet)."""

    def page_archived(self, stream: StreamSpec, record: PageRecord) -> None:
        """A page of the stream is written to the attempt's folder."""

    def stream_sized(self, stream: StreamSpec, total: Any) -> None:
        """The stream's first page announced its record count (``total_field``; the value
        as sent, which the extract checks against the records received at the end); told
        before that page is archived."""

    def stream_finished(self, stream: StreamSpec) -> None:
        """Every page of the stream is archived and checked."""

    def committed(self, batch_id: str) -> None:
        """The attempt is the batch ``batch_id``."""

    def failed(self) -> None:
        """The extraction failed; nothing of it is a batch."""


class ContentDigest:
    """A digest of the records alone, fed page by page so no batch is held in memory.

    Per stream: sha256 of the canonical JSON of its records joined by ``,`` (one encoder
    call per page, not per record), so page boundaries and envelopes do not change it; the
    streams are combined in name order, so the order they are fetched in does not either.
    """

    def __init__(self) -> None:
        self._streams: dict[str, Any] = {}
        self._started: set[str] = set()

    def add(self, stream: str, records: list[dict[str, Any]], *, from_json: bool = False) -> None:
        """``from_json``: the records were parsed from a JSON page without NaN/Infinity
        (:func:`jsoncodec.canonical` may then write them with msgspec: the same bytes)."""
        if records:
            self.add_canonical(stream, jsoncodec.canonical(records, from_json=from_json))
        else:
            self._streams.setdefault(stream, hashlib.sha256())

    def add_canonical(self, stream: str, canonical: bytes) -> None:
        """A page's records already in canonical form (``jsoncodec.canonical``)."""
        digest = self._streams.setdefault(stream, hashlib.sha256())
        if canonical == b"[]":
            return
        if stream in self._started:
            digest.update(b",")
        self._started.add(stream)
        digest.update(canonical[1:-1])

    def hexdigest(self) -> str:
        total = hashlib.sha256()
        for stream in sorted(self._streams):
            total.update(f"{stream}\t{self._streams[stream].hexdigest()}\n".encode())
        return total.hexdigest()


def content_digest(records_by_stream: dict[str, list[dict[str, Any]]]) -> str:
    """The digest of whole record lists (what :class:`ContentDigest` gives page by page)."""
    digest = ContentDigest()
    for stream, records in records_by_stream.items():
        digest.add(stream, records)
    return digest.hexdigest()


def make_batch_id(feed: str, period: str, content_sha256: str) -> str:
    """Deterministic batch id: the same content for the same period is the same batch."""
    return hashlib.sha256(f"{feed}|{period}|{content_sha256}".encode()).hexdigest()[:20]


def check_period_published(feed: FeedSpec, period: str, today: date | None = None) -> Period:
    """Raise PeriodNotPublished for periods the feed's calendar has no release for."""
    p = Period.parse(period)
    if p.month not in feed.published_months:
        following = next((m for m in feed.published_months if m > p.month), None)
        combined = str(Period(p.year, following)) if following else None
        raise PeriodNotPublished(
            f"{feed.title}：{p.year}年{p.month}月数据不单独发布"
            + (f"，与{combined}合并发布" if combined else ""),
            combined_with=combined,
        )
    if p > last_full_month(today):
        raise PeriodNotPublished(f"{feed.title}：{period} 尚未结束，不可能已发布")
    if p < Period.parse(feed.first_period):
        raise PeriodNotPublished(f"{feed.title}：{period} 早于监测起始期 {feed.first_period}")
    return p


def _check_envelope(feed: FeedSpec, stream_name: str, doc: dict[str, Any], where: str) -> None:
    stream = feed.stream(stream_name)
    if stream.unit_field and feed.unit and stream.unit_field in doc:
        declared = doc.get(stream.unit_field)
        if declared != feed.unit:
            raise PayloadError(
                f"{where}: declared unit {declared!r}, the spec expects {feed.unit!r}"
            )


class Budget:
    """What an extraction has taken so far against the feed's ``limits`` (pages and bytes
    of the whole batch, and the deadline), checked as each page arrives."""

    def __init__(self, limits: ExtractLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.deadline_s
        self.pages = 0
        self.bytes = 0

    def spend(self, page: Page, where: str) -> None:
        self.pages += 1
        self.bytes += len(page.body)
        limits = self.limits
        if self.pages > limits.max_batch_pages:
            raise LimitExceeded(
                f"{where}：页数超过上限 {limits.max_batch_pages}（limits.max_batch_pages）"
                " (too many pages)"
            )
        if self.bytes > limits.max_batch_bytes:
            raise LimitExceeded(
                f"{where}：本批数据超过上限 {limits.max_batch_bytes / 2**20:.0f} MiB"
                "（limits.max_batch_bytes）(batch too large)"
            )
        if time.monotonic() > self.deadline:
            raise LimitExceeded(
                f"{where}：提取超过时限 {limits.deadline_s:.0f} 秒（limits.deadline_s）"
                " (extract deadline)"
            )


def _check_protection(stream: str, protection: Protection, where: str) -> None:
    """A declared personal field absent from records: the sender renamed it (its values
    were protected by content and only that form was written); the batch is refused."""
    if protection.missing:
        fields = "、".join(f"{name}（{n} 条记录）" for name, n in protection.missing.items())
        raise PayloadError(
            f"{where}: 声明的个人信息字段缺失：{fields}；字段可能被改名，整批拒收，"
            f"仅保存假名化后的内容 (declared personal-data fields missing)"
        )


def _check_total(where: str, expected_total: Any, received: int) -> None:
    if expected_total is not None and int(expected_total) != received:
        raise PayloadError(
            f"{where}: the source announced "
            f"{expected_total} rows but {received} arrived (incomplete or truncated)"
        )


def _extract_stream(
    feed: FeedSpec,
    stream: StreamSpec,
    period: str,
    source: Source,
    attempt: Attempt,
    protector: Pseudonymiser,
    budget: Budget,
    digest: ContentDigest,
    observer: ExtractObserver,
) -> tuple[int, int]:
    """Archive every page of one stream, protected, within the budget; returns the rows
    received and how many personal identifiers were found outside declared fields."""
    received = found = 0
    expected_total = None
    digest.add(stream.name, [])
    pages = source.pages(stream, {feed.period_field: period})
    if protect_workers.applies(stream, source):  # transaction scale, personal data
        return _extract_in_workers(
            feed, stream, period, pages, attempt, protector, budget, digest, observer
        )
    if stream.chunk_rows:  # transaction scale: fetch the next page meanwhile
        pages = prefetched(pages)
    for page, doc in pages:
        budget.spend(page, f"{feed.name}/{stream.name} {period}")
        page, doc, protection = protector.protect(stream, page, doc)
        if protection.found and hasattr(source, "keep_protected"):
            source.keep_protected(page)  # no clear copy left in the drop folder
        records = doc.get(stream.records_field) if isinstance(doc, dict) else None
        record = attempt.write_page(page, len(records) if isinstance(records, list) else None)
        if stream.total_field and expected_total is None and isinstance(doc, dict):
            expected_total = doc.get(stream.total_field)
            observer.stream_sized(stream, expected_total)  # before its first chunk
        observer.page_archived(stream, record)
        where = f"{feed.name}/{stream.name} {period} page {page.number}"
        _check_protection(stream.name, protection, where)
        found += protection.found
        _check_envelope(feed, stream.name, doc, where)
        records = doc[stream.records_field]
        digest.add_canonical(stream.name, canonical_records(page, records, protection))
        received += len(doc[stream.records_field])
    _check_total(f"{feed.name}/{stream.name} {period}", expected_total, received)
    return received, found


def _extract_in_workers(
    feed: FeedSpec,
    stream: StreamSpec,
    period: str,
    pages: Iterator[tuple[Page, Any]],
    attempt: Attempt,
    protector: Pseudonymiser,
    budget: Budget,
    digest: ContentDigest,
    observer: ExtractObserver,
) -> tuple[int, int]:
    """:func:`_extract_stream` with the pages protected by worker processes
    (``protect_workers``): the same archive, checks and digest, in the same order."""
    received = found = 0
    expected_total = None
    name = f"{feed.name}/{stream.name} {period}"
    with protect_workers.pool_for(protector, stream) as pool:
        spend = partial(budget.spend, where=name)
        for done in protect_workers.protected_pages(pool, prefetched(pages), spend):
            page, doc = done.page, done.envelope
            record = attempt.write_page(page, done.rows)
            if stream.total_field and expected_total is None and isinstance(doc, dict):
                expected_total = doc.get(stream.total_field)
                observer.stream_sized(stream, expected_total)  # before its first chunk
            observer.page_archived(stream, record)
            where = f"{name} page {page.number}"
            _check_protection(stream.name, done.protection, where)
            found += done.protection.found
            _check_envelope(feed, stream.name, doc, where)
            if done.canonical is None:  # no record list: fails as in one process
                len(doc[stream.records_field])
                raise PayloadError(f"{where}: no record list in {stream.records_field!r}")
            digest.add_canonical(stream.name, done.canonical)
            received += done.rows or 0
    _check_total(f"{feed.name}/{stream.name} {period}", expected_total, received)
    return received, found


def extract(
    feed: FeedSpec,
    period: str,
    *,
    source: Source | None = None,
    archive_root: Path | None = None,
    observer: ExtractObserver | None = None,
) -> ExtractedBatch:
    """Fetch every stream of ``feed`` for ``period`` into the archive, from the source its
    spec declares (HTTP API or file drop) unless one is given; ``observer`` is told of
    each stream and page as it is archived."""
    check_period_published(feed, period)
    root = archive_root or config.archive_dir()
    # personal data: a feed that declares some needs the key before anything is fetched;
    # any other feed is protected by content and needs it once a page holds personal data
    protector = Pseudonymiser(pii_key()) if feed.has_pii else Pseudonymiser()
    source = source or source_for(feed)
    attempt = Attempt(root, feed.name, period, redact=feed.has_pii)
    source.on_unparseable = attempt.keep_unparseable
    budget = Budget(feed.limits)
    source.max_page_bytes, source.deadline = feed.limits.max_page_bytes, budget.deadline
    digest = ContentDigest()
    counts: dict[str, int] = {}
    protected: dict[str, int] = {}
    observer = observer or ExtractObserver()
    try:
        for stream in feed.streams:
            observer.stream_started(stream, attempt)
            try:
                counts[stream.name], found = _extract_stream(
                    feed, stream, period, source, attempt, protector, budget, digest, observer
                )
            except RecursionError:  # a page parsed, but too deep to scan, encode or digest
                raise PayloadError(
                    f"{feed.name}/{stream.name} {period}：页面 JSON 嵌套过深，无法检查与存档 "
                    "(a page is nested too deeply to process)"
                ) from None
            observer.stream_finished(stream)
            if found:
                protected[stream.name] = found
    except PeriodNotPublished:
        observer.failed()
        attempt.fail("period not published")
        raise
    except FeedError as exc:
        observer.failed()
        kept = attempt.fail(str(exc))
        raise type(exc)(f"{exc} [received pages kept in {kept}]") from exc
    except BaseException as exc:  # anything else: keep what arrived, then re-raise as is
        observer.failed()
        attempt.fail(f"{type(exc).__name__}: {exc}")
        raise
    notes = list(getattr(source, "notes", []))
    notes += [
        f"{name}：在未声明的字段中发现 {n} 处个人信息（身份证号/手机号），已假名化后存档"
        for name, n in protected.items()
    ]
    content = digest.hexdigest()
    batch_id = make_batch_id(feed.name, period, content)
    batch_dir = attempt.commit(batch_id, content)
    observer.committed(batch_id)
    pages = read_manifest(batch_dir)["pages"]
    batch = ExtractedBatch(
        feed=feed.name,
        period=period,
        batch_id=batch_id,
        content_sha256=content,
        archive_dir=str(batch_dir.relative_to(root)),
        rows=counts,
        pages=len(pages),
        bytes=sum(p["bytes"] for p in pages),
        notes=notes,
    )
    log.info("extracted %s %s: batch %s, rows %s", feed.name, period, batch_id, batch.rows)
    return batch


def prefetched(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``pages`` fetched by a worker thread up to ``depth`` ahead, so the source produces
    the next page while this one is pseudonymised and archived (a cursor API can only be
    read in order, but the wait for it can overlap the work). Errors of the worker are
    raised here, in order; leaving the loop early stops the worker."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in pages:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            box.put(("error", exc))

    worker = threading.Thread(target=work, name="cm-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)


def _json_records(feed: FeedSpec, record: PageRecord, body: bytes) -> list[dict[str, Any]]:
    return jsoncodec.loads(body)[feed.stream(record.stream).records_field]


def _xlsx_records(feed: FeedSpec, record: PageRecord, body: bytes) -> list[dict[str, Any]]:
    from consumption_monitor.feeds.sources.workbook import records_of

    return records_of(feed, record.stream, body, str(record.params.get("file", "")))


# page format -> how its archived bytes become records; the same function extraction used
RECORD_READERS = {"json": _json_records, "xlsx": _xlsx_records}


def read_records(feed: FeedSpec, batch_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The records of every stream, re-parsed from the archived pages by their format."""
    out: dict[str, list[dict[str, Any]]] = {s.name: [] for s in feed.streams}
    for record, body in read_pages(batch_dir):
        out[record.stream].extend(RECORD_READERS[record.format](feed, record, body))
    return out


def iter_chunks(
    feed: FeedSpec,
    batch_dir: Path,
    stream: str,
    chunk_rows: int,
    only_rows: set[int] | None = None,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The records of one stream as (first row number, records) chunks of about
    ``chunk_rows``, re-parsed page by page from the archive: memory stays bounded by the
    chunk whatever the volume of the period. With ``only_rows``, pages without any of those
    rows are skipped (quarantine looks up a few rows of a large batch)."""
    first = 0
    chunk: list[dict[str, Any]] = []
    for record, body in iter_pages(batch_dir, stream):
        # pages holding none of the wanted rows are skipped without parsing
        if (
            only_rows is not None
            and record.rows is not None
            and not chunk
            and not any(first <= r < first + record.rows for r in only_rows)
        ):
            first += record.rows
            continue
        chunk.extend(RECORD_READERS[record.format](feed, record, body))
        if len(chunk) >= chunk_rows:
            yield first, chunk
            first += len(chunk)
            chunk = []
    if chunk:
        yield first, chunk


ChunkPages = tuple[int, list[dict[str, Any]]]  # (first row, manifest entries of its pages)


class ChunkCutter:
    """Pages grouped as :func:`iter_chunks` groups their records: a chunk ends with the page
    that brings it to ``chunk_rows`` or more; pages are given one by one with their rows
    (from a manifest, or as an extraction archives them)."""

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows
        self.first = self.count = 0
        self.pages: list[dict[str, Any]] = []

    def add(self, page: dict[str, Any], rows: int) -> ChunkPages | None:
        """The chunk this page completes, if it completes one."""
        self.pages.append(page)
        self.count += rows
        return self._cut() if self.count >= self.chunk_rows else None

    def rest(self) -> ChunkPages | None:
        """The last chunk, shorter than ``chunk_rows`` (None when it holds no record)."""
        return self._cut() if self.pages and self.count else None

    def _cut(self) -> ChunkPages:
        chunk = (self.first, self.pages)
        self.first, self.count, self.pages = self.first + self.count, 0, []
        return chunk


def chunk_plan(batch_dir: Path, stream: str, chunk_rows: int) -> list[ChunkPages] | None:
    """The chunks :func:`iter_chunks` yields, as their first row and pages, read from the
    manifest alone (so chunks can be read and checked apart, in other processes); None
    when a page's row count was not recorded."""
    plan: list[ChunkPages] = []
    cutter = ChunkCutter(chunk_rows)
    for raw in read_manifest(batch_dir)["pages"]:
        if raw["stream"] != stream:
            continue
        if raw.get("rows") is None:
            return None
        if chunk := cutter.add(raw, raw["rows"]):
            plan.append(chunk)
    if chunk := cutter.rest():
        plan.append(chunk)
    return plan


def read_chunk_pages(
    batch_dir: Path, pages: list[dict[str, Any]]
) -> list[tuple[PageRecord, bytes]]:
    """The archived pages of one planned chunk, each checked against its sha256."""
    out = []
    for raw in pages:
        record = PageRecord(**raw)
        body = (batch_dir / record.file).read_bytes()
        if hashlib.sha256(body).hexdigest() != record.sha256:
            raise ValueError(f"archived page {batch_dir / record.file} does not match its sha256")
        out.append((record, body))
    return out


def chunk_records(feed: FeedSpec, pages: list[tuple[PageRecord, bytes]]) -> list[dict]:
    """The records of a chunk's pages (:func:`read_chunk_pages`), parsed by their format."""
    records: list[dict[str, Any]] = []
    for record, body in pages:
        records.extend(RECORD_READERS[record.format](feed, record, body))
    return records
