"""File-drop source: workbooks dropped by the responsible units, read as feed pages.

Folders under ``<CM_INCOMING_DIR>/<feed>/`` (the spec may name another ``folder``):

- the folder itself: where units (or the mail robot) drop files;
- ``_processed/<period>/``: every accepted file, renamed ``<seq>-<sha12>.xlsx``, with a
  ``.json`` beside it (original name, sha256, unit, ledger, arrival order);
- ``_rejected/``: files that cannot be read as their template, each with ``.reason.txt``;
- ``_duplicates/``: files whose bytes were already processed (same sha256).

A file's period and unit come from its header block (统计期, 填报单位), not its name. Only
files of the period being extracted are taken in; others wait for their period's run.
The batch of (feed, period) is the **latest accepted file of each (ledger, unit)** in
arrival order, so a corrected file supersedes the earlier one of its unit while the other
units' files stay, and the same set of files always gives the same batch id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumption_monitor.common import config
from consumption_monitor.feeds.errors import FeedRejected, PeriodNotPublished
from consumption_monitor.feeds.sources.base import Page
from consumption_monitor.feeds.sources.workbook import FileRejected, read_workbook
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec

log = logging.getLogger(__name__)
PROCESSED, REJECTED, DUPLICATES = "_processed", "_rejected", "_duplicates"


def drop_dir(feed: FeedSpec, root: Path | None = None) -> Path:
    return (root or config.incoming_dir()) / str(feed.source_options.get("folder", feed.name))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


class FileDropSource:
    """Takes in the period's dropped files and yields the current file of each unit."""

    def __init__(self, feed: FeedSpec, root: Path | None = None) -> None:
        self.feed = feed
        self.folder = drop_dir(feed, root)
        self.on_unparseable: Callable[[Page, str], None] | None = None  # files never retry
        self.notes: list[str] = []
        self._intake_done = False

    # --- intake --------------------------------------------------------------------------

    def _sidecars(self, period: str | None = None) -> list[dict[str, Any]]:
        base = self.folder / PROCESSED
        pattern = f"{period}/*.json" if period else "*/*.json"
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(base.glob(pattern))]

    def _set_aside(self, path: Path, kind: str, reason: str) -> None:
        target = self.folder / kind / f"{_stamp()}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        target.with_name(target.name + ".reason.txt").write_text(reason, encoding="utf-8")
        self.notes.append(reason)
        log.warning("%s: %s", self.feed.name, reason)

    def intake(self, period: str) -> None:
        """Move every dropped file to ``_processed/<its period>`` (duplicates and unreadable
        files aside, with the reason).

        Each file is read once, whatever period is being run: a file of another period is
        filed under that period and loads with that period's run. (Reading every waiting
        file again for each period made a history of a few hundred files quadratic.)
        Done once per source object (one run).
        """
        del period  # the protocol passes it; every waiting file is taken in at once
        if self._intake_done:
            return
        self._intake_done = True
        known = {s["sha256"]: s for s in self._sidecars()}
        dropped = sorted(
            (
                p
                for p in self.folder.glob("*")
                if p.is_file() and not p.name.startswith((".", "~$"))
            ),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )
        seqs: dict[str, int] = {}
        for path in dropped:
            body = path.read_bytes()
            sha = hashlib.sha256(body).hexdigest()
            if sha in known:
                first = known[sha]
                self._set_aside(
                    path,
                    DUPLICATES,
                    f"文件 {path.name} 与已处理的 {first['file']}（{first['period']}）内容相同"
                    f"（sha256 {sha[:12]}），不重复入库",
                )
                continue
            try:
                parsed = read_workbook(self.feed, body, path.name)
            except FileRejected as exc:
                self._set_aside(path, REJECTED, f"{exc}；该文件未入库，请更正后重新报送")
                continue
            if parsed.period not in seqs:
                seqs[parsed.period] = len(self._sidecars(parsed.period))
            seq = seqs[parsed.period] = seqs[parsed.period] + 1
            target = self.folder / PROCESSED / parsed.period / f"{seq:05d}-{sha[:12]}.xlsx"
            target.parent.mkdir(parents=True, exist_ok=True)
            sidecar = {
                "file": path.name,
                "sha256": sha,
                "stream": parsed.stream,
                "unit": parsed.unit,
                "period": parsed.period,
                "version": parsed.version,
                "seq": seq,
                "stored_as": target.name,
                "received_at": datetime.now(UTC).isoformat(),
            }
            shutil.move(path, target)
            target.with_suffix(".json").write_text(
                json.dumps(sidecar, ensure_ascii=False, indent=2), encoding="utf-8"
            )
            known[sha] = sidecar

    def current_files(self, period: str) -> dict[tuple[str, str], dict[str, Any]]:
        """(stream, unit) -> the latest accepted file of that unit for the period."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for sidecar in sorted(self._sidecars(period), key=lambda s: s["seq"]):
            latest[(sidecar["stream"], sidecar["unit"])] = sidecar
        return latest

    def keep_protected(self, page: Page) -> None:
        """Replace the stored copy of a workbook in which personal data was found by its
        protected form (the engine calls this before archiving the page): the drop folder
        keeps no clear identifier either. The sidecar keeps the received sha256, so the same
        file dropped again is still recognised as a duplicate."""
        stored = self.folder / str(page.params["stored_as"])
        partial = stored.with_suffix(".protecting")
        partial.write_bytes(page.body)
        partial.replace(stored)

    # --- the Source protocol -------------------------------------------------------------

    def pages(self, stream: StreamSpec, base_params: dict[str, Any]) -> Iterator[tuple[Page, dict]]:
        """One page per unit's current file of this ledger, in unit order."""
        period = str(base_params[self.feed.period_field])
        self.intake(period)
        current = self.current_files(period)
        if not current:
            reasons = "；".join(self.notes)
            if self.notes:
                raise FeedRejected(f"{self.feed.title} {period}：没有可入库的文件：{reasons}")
            raise PeriodNotPublished(
                f"{self.feed.title} {period}：尚未收到台账文件（{self.folder}）"
            )
        mine = sorted(
            (s for (name, _), s in current.items() if name == stream.name), key=lambda s: s["unit"]
        )
        for number, sidecar in enumerate(mine, start=1):
            path = self.folder / PROCESSED / period / sidecar["stored_as"]
            body = path.read_bytes()
            records = read_workbook(self.feed, body, sidecar["file"]).records
            page = Page(
                stream=stream.name,
                number=number,
                url=f"file:{sidecar['file']}",
                params={
                    self.feed.period_field: period,
                    "unit": sidecar["unit"],
                    "file": sidecar["file"],
                    "stored_as": f"{PROCESSED}/{period}/{sidecar['stored_as']}",
                },
                status=200,
                body=body,
                received_at=datetime.fromisoformat(sidecar["received_at"]),
                format="xlsx",
            )
            yield page, {stream.records_field: records}
