"""The demo's data: which feeds it loads, their sample inputs, and the warehouse they land in.

HTTP feeds come from the sample feed server (``cm feed-server``, started by the demo); the
sample files of file-drop feeds (``cm ledger-samples``) are dropped into the incoming folder
before Airflow starts - except files an earlier demo already took in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cm_devtools.demo.common import DAG_ID, DemoError
from consumption_monitor.common.periods import Period


def available_feeds() -> list[str]:
    """Every feed with a spec (and a DAG of the same id): the default feed first."""
    from consumption_monitor.feeds.spec import list_feeds

    names = list_feeds()
    return sorted(names, key=lambda n: (n != DAG_ID, n))


def parse_feeds(text: str, available: Iterable[str] | None = None) -> tuple[str, ...]:
    """``--feeds`` value: 'all' or comma-separated DAG ids, de-duplicated in given order."""
    known = list(available if available is not None else available_feeds())
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    if not wanted:
        raise argparse.ArgumentTypeError("--feeds 不能为空 (例如 retail_monthly 或 all)")
    if "all" in wanted:
        return tuple(known)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"未知的数据源 unknown feed(s): {', '.join(unknown)}；可选: all, {', '.join(known)}"
        )
    return tuple(dict.fromkeys(wanted))


def file_drop_feeds(feeds: Iterable[str]) -> list[str]:
    """The feeds among ``feeds`` whose source is a file drop (sample files must be dropped)."""
    from consumption_monitor.feeds.spec import load_feed

    return [name for name in feeds if load_feed(name).source_kind == "file"]


def drop_sample_files(
    feed: str, incoming_root: Path, staging: Path, first: Period, last: Period
) -> tuple[int, int]:
    """Drop the feed's sample files for ``first`` .. ``last`` into its incoming folder.

    Files whose bytes were already taken in by an earlier demo (same sha256 in
    ``_processed``) are not dropped again, so a second demo does not fill ``_duplicates``.
    Files are written to ``staging`` first and moved in whole (a run never sees half a file).
    Returns (dropped, already processed).
    """
    import hashlib
    import shutil

    from cm_devtools import ledger_samples as samples
    from consumption_monitor.feeds.sources.file_drop import PROCESSED, drop_dir
    from consumption_monitor.feeds.spec import load_feed

    spec = load_feed(feed)
    if feed != samples.FEED:
        raise DemoError(f"没有 {feed} 的样例文件生成器 (no sample files for this file feed)")
    folder = drop_dir(spec, incoming_root)
    known: set[str] = set()
    for sidecar in (folder / PROCESSED).glob("*/*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            known.add(json.loads(sidecar.read_text(encoding="utf-8"))["sha256"])
    shutil.rmtree(staging, ignore_errors=True)
    written = samples.write_samples(staging, str(first), str(last))
    folder.mkdir(parents=True, exist_ok=True)
    dropped = 0
    for item in written:
        if hashlib.sha256(item.path.read_bytes()).hexdigest() in known:
            continue
        shutil.move(item.path, folder / item.path.name)
        dropped += 1
    shutil.rmtree(staging, ignore_errors=True)
    return dropped, len(written) - dropped


def feed_command(port: int, token: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "consumption_monitor",
        "feed-server",
        "--port",
        str(port),
        f"--token={token}",  # one argument: a random token may start with "-"
    ]


def load_demo_summary(url: str, feed: str = DAG_ID) -> dict[str, Any] | None:
    """The warehouse summary from the reporting module; None when it is not importable."""
    try:
        from consumption_monitor.warehouse.db import make_engine
        from consumption_monitor.warehouse.digest import demo_summary
    except ImportError:
        return None
    engine = make_engine(url)
    try:
        return dict(demo_summary(engine, feed))
    finally:
        engine.dispose()


def warehouse_is_empty(url: str, feed: str = DAG_ID) -> bool:
    """True when no period of ``feed`` is loaded yet (also when the summary cannot be read)."""
    try:
        summary = load_demo_summary(url, feed)
    except Exception:  # a broken or foreign warehouse: reload everything
        return True
    return not (summary or {}).get("periods_loaded")


def migrate_warehouse(url: str) -> bool:
    """Bring the warehouse schema up to date; False when the migration module is missing."""
    try:
        from consumption_monitor.warehouse.migrate import upgrade
    except ImportError:
        return False
    upgrade(url)
    return True
