"""The blank templates the bureau sends to the responsible units (``cm ledger-templates``)."""

from __future__ import annotations

from pathlib import Path

from consumption_monitor.common.files import write_atomic
from consumption_monitor.feeds.sources.workbook import (
    build_workbook,
    template_version,
    workbook_bytes,
)
from consumption_monitor.feeds.spec import load_feed

FEED = "work_ledgers"


def template_name(stream_path: str, version: str) -> str:
    return f"{stream_path}_模板v{version}.xlsx"


def write_templates(out: Path, feed_name: str = FEED) -> list[Path]:
    """One blank workbook per ledger stream; returns the files written."""
    feed = load_feed(feed_name)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stream in feed.streams:
        path = out / template_name(stream.path, template_version(feed))
        write_atomic(path, workbook_bytes(build_workbook(feed, stream)))
        written.append(path)
    return written
