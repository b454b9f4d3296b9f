"""The embedded default's warehouse for the same data as a topology, and warehouse digests:
the Celery test and the backfill benchmark compare the two builds table by table."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cm_devtools.demo.data import drop_sample_files, file_drop_feeds, migrate_warehouse
from consumption_monitor.common.periods import Period, period_range


def build_embedded(
    feeds: Iterable[str],
    first: Period,
    last: Period,
    *,
    url: str,
    data_dir: Path,
    snapshots: bool = False,
) -> None:
    """The embedded default's warehouse for the same data: ``cm run`` of every feed and period.

    Runs in this process with ``CM_DATA_DIR`` (archive, incoming folder) set to ``data_dir``
    for the duration; the caller points ``CM_FEED_BASE_URL``/``CM_FEED_TOKEN`` at the feed
    server. File-drop feeds get the same sample files the topology got. ``snapshots`` then
    recomputes every KPI of the periods with the snapshot DAG's own step
    (``pipeline.snapshot_periods``): the counterpart of ``workload.run_snapshots``.
    """
    from consumption_monitor.feeds.errors import PeriodNotPublished
    from consumption_monitor.pipeline.steps import run_period, snapshot_periods

    feeds = tuple(feeds)
    saved = os.environ.get("CM_DATA_DIR")
    os.environ["CM_DATA_DIR"] = str(data_dir)
    try:
        migrate_warehouse(url)
        for feed in file_drop_feeds(feeds):
            drop_sample_files(
                feed, data_dir / "incoming", data_dir / f"staging-{feed}", first, last
            )
        for feed in feeds:
            for period in period_range(first, last):
                with contextlib.suppress(PeriodNotPublished):
                    run_period(feed, str(period), url=url)
        if snapshots:
            snapshot_periods([str(p) for p in period_range(first, last)], url=url)
    finally:
        if saved is None:
            os.environ.pop("CM_DATA_DIR", None)
        else:
            os.environ["CM_DATA_DIR"] = saved


def digests(url: str) -> dict[str, dict[str, Any]]:
    """``cm digest --exclude-volatile`` of a warehouse: sha256 and rows per analytic table."""
    from consumption_monitor.warehouse.db import make_engine
    from consumption_monitor.warehouse.digest import warehouse_digest

    engine = make_engine(url)
    try:
        return warehouse_digest(engine, exclude_volatile=True)
    finally:
        engine.dispose()
