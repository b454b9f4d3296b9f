"""Pages of a transaction-scale stream pseudonymised side by side in worker processes.

Why: protecting personal data is per record (a keyed HMAC per identifier, the check
character, the scan of every other value) and was most of a trade-in extract's time in
this process, which did it page after page on one core. Forked workers (the key already
loaded) parse each page's bytes as the source did, protect it and write its canonical
records for the content digest; this process keeps the order: it spends the budget as
pages arrive, archives each protected page and checks it exactly as one process does
(``engine._extract_stream``), so the archive, the digest and the batch id are the same
(``tests/test_parallel_validation.py``). Only streams with declared personal fields read
in chunks, from sources that keep no protected copy (not the file drop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from consumption_monitor.common.forking import fork_pool, in_order, worker_count
from consumption_monitor.feeds import jsoncodec
from consumption_monitor.feeds.pii import Protection, Pseudonymiser, canonical_records
from consumption_monitor.feeds.sources.base import Page, Source
from consumption_monitor.feeds.spec import StreamSpec

WORKERS_ENV = "CM_EXTRACT_WORKERS"
_STATE: dict[str, Any] = {}  # the protector and stream, set before the fork


def workers() -> int:
    """Worker processes: ``CM_EXTRACT_WORKERS``, by default 1 (this process alone;
    ``common.forking``)."""
    return worker_count(WORKERS_ENV)


def applies(stream: StreamSpec, source: Source) -> bool:
    return (
        bool(stream.chunk_rows and stream.pii)
        and not hasattr(source, "keep_protected")
        and (workers() > 1)
    )


@dataclass
class Protected:
    """A protected page, the document less its records, and the records' count and
    canonical form (None when the document holds no record list)."""

    page: Page
    envelope: Any
    rows: int | None
    canonical: bytes | None
    protection: Protection = field(default_factory=Protection)


def _protect(page: Page) -> Protected:
    protector: Pseudonymiser = _STATE["protector"]
    stream: StreamSpec = _STATE["stream"]
    doc = jsoncodec.loads(page.body)  # what the source parsed, parsed again here
    page, doc, protection = protector.protect(stream, page, doc)
    if not isinstance(doc, dict):
        return Protected(page, doc, None, None, protection)
    records = doc.get(stream.records_field)
    envelope = {k: v for k, v in doc.items() if k != stream.records_field}
    if not isinstance(records, list):
        if stream.records_field in doc:
            envelope[stream.records_field] = records
        return Protected(page, envelope, None, None, protection)
    canonical = canonical_records(page, records, protection)
    protection.canonical = None  # sent back once, as ``canonical``
    return Protected(page, envelope, len(records), canonical, protection)


@contextmanager
def pool_for(protector: Pseudonymiser, stream: StreamSpec) -> Iterator[Any]:
    """Worker processes forked now (before any fetching thread starts) for one stream."""
    _STATE.update(protector=protector, stream=stream)
    with fork_pool(workers()) as pool:
        yield pool


def protected_pages(
    pool: Any, pages: Iterator[tuple[Page, Any]], spend: Callable[[Page], None]
) -> Iterator[Protected]:
    """The pages protected by the workers, in order, a few in flight; ``spend`` sees each
    page as it arrives (the batch's limits)."""

    def spent() -> Iterator[Page]:
        for page, _doc in pages:
            spend(page)
            yield page

    return in_order(pool, _protect, spent(), ahead=4 * workers())
