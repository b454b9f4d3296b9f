"""What the engine needs from a source, whatever its kind: pages of a stream.

A page is the exact bytes received plus how to re-read them (``format``), so the raw archive
is the same for every kind and validation and loading can re-parse it later. The HTTP API
yields JSON pages; a file drop yields one page per workbook. Which source a spec declares
is decided in :mod:`~consumption_monitor.feeds.sources.registry`, so ``extract`` has one
code path for every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from consumption_monitor.feeds.spec import StreamSpec


@dataclass(frozen=True)
class Page:
    """One received page: the exact bytes plus what the request was."""

    stream: str
    number: int
    url: str  # without credentials; the token travels in a header
    params: dict[str, Any]
    status: int
    body: bytes
    received_at: datetime
    format: str = "json"  # how read_records re-parses the archived bytes
    # set when ``body`` is not what arrived (personal data pseudonymised): the checksum and
    # size of the bytes received, kept in the manifest instead of the bytes themselves
    received: dict[str, Any] | None = None


class Source(Protocol):
    """A feed source: the pages of one stream for the given parameters (the period)."""

    on_unparseable: Callable[[Page, str], None] | None
    notes: list[str]  # problems that did not stop the extraction (e.g. a rejected file)
    # set by the engine from the spec's ``limits`` (a source that streams honours them)
    max_page_bytes: int | None
    deadline: float | None  # time.monotonic() by which the extraction must end

    def pages(
        self, stream: StreamSpec, base_params: dict[str, Any]
    ) -> Iterator[tuple[Page, dict]]: ...
