"""The source of a feed, by the spec's ``source.kind``: one module per kind.

Each kind's module is imported only when a feed of that kind is extracted, so extracting an
HTTP feed never loads openpyxl (file drops) and parsing a DAG file loads neither. The kind
modules import :mod:`~consumption_monitor.feeds.sources.base` (``Page``, ``Source``); this
registry imports them, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from consumption_monitor.feeds.sources.base import Source

if TYPE_CHECKING:
    from consumption_monitor.feeds.spec import FeedSpec

SourceFactory = Callable[["FeedSpec"], Source]


def _http(feed: FeedSpec) -> Source:
    from consumption_monitor.common import config
    from consumption_monitor.feeds.sources.http_api import HttpSource

    return HttpSource(config.feed_endpoint(feed.connection_id))


def _file(feed: FeedSpec) -> Source:
    from consumption_monitor.feeds.sources.file_drop import FileDropSource

    return FileDropSource(feed)


SOURCES: dict[str, SourceFactory] = {"http": _http, "file": _file}


def source_for(feed: FeedSpec) -> Source:
    """The source the spec declares, ready to yield pages."""
    try:
        factory = SOURCES[feed.source_kind]
    except KeyError:
        raise ValueError(
            f"feed {feed.name}: unknown source kind {feed.source_kind!r} (known: {sorted(SOURCES)})"
        ) from None
    return factory(feed)
