"""File-drop source: workbooks dropped by the responsible units, read as feed pages.

Folders under ``<CM_INCOMING_DIR>/<feed>/`` (the spec may name another ``folder``):

- the folder itself: where units (or the mail robot) drop files;
- ``_processed/<period>/``: every accepted file, renamed ``<seq>-<sha12>.xlsx``, with a
  ``.json`` beside it (original name, sha256, unit, ledger, arrival order);
- ``_rejected/``: files that cannot be read as their template, are over a limit or are of
  a period that cannot load (before the feed's first period, not yet ended);
- ``_duplicates/``: files whose bytes were already processed (same sha256).

Files set aside are stored under safe generated names ``<stamp>-<sha12>.<ext>`` with
``.reason.txt`` (one line, Chinese) and ``.json`` (original name, raw bytes in hex when the
name was not UTF-8, sha256, reason). Every dropped file ends taken or set aside with a
reason; hidden files (``.``/``~$``), folders and links are left and reported; a broken
sidecar is reported and skipped. Sidecars are written atomically.

A file's period and unit come from its header block (统计期, 填报单位), not its name. Every
waiting file is taken in by any run; a file of another period is filed under it, noted in
the run's notes, and loads with that period's run (``cm status`` lists such periods).
The batch of (feed, period) is the **latest accepted file of each (ledger, unit)** in
arrival order, so a corrected file supersedes the earlier one of its unit while the other
units' files stay, and the same set of files always gives the same batch id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumption_monitor.common import config
from consumption_monitor.common.files import write_atomic
from consumption_monitor.common.periods import Period, last_full_month
from consumption_monitor.feeds.errors import FeedRejected, PeriodNotPublished
from consumption_monitor.feeds.pii_scan import file_holds_identifiers, mask_text
from consumption_monitor.feeds.sources.base import Page
from consumption_monitor.feeds.sources.workbook import FileRejected, read_workbook
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec

log = logging.getLogger(__name__)
PROCESSED, REJECTED, DUPLICATES = "_processed", "_rejected", "_duplicates"
SIDECAR_KEYS = {"file", "sha256", "stream", "unit", "period", "seq", "stored_as", "received_at"}
SHOWN_CHARS = 80  # a longer original name is shortened in messages and ``source_file``
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


def drop_dir(feed: FeedSpec, root: Path | None = None) -> Path:
    return (root or config.incoming_dir()) / str(feed.source_options.get("folder", feed.name))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def original_name(path: Path) -> tuple[str, str | None]:
    """The name as the unit gave it, readable: UTF-8, else GB 18030 (names from a zip made
    on a Chinese Windows), else with replacement marks; and the raw bytes in hex when they
    were not UTF-8. Unprintable characters (controls, lone surrogates) become ``?``."""
    raw = os.fsencode(path.name)
    try:
        name, raw_hex = raw.decode("utf-8"), None
    except UnicodeDecodeError:
        try:
            name = raw.decode("gb18030")
        except UnicodeDecodeError:
            name = raw.decode("utf-8", "replace")
        raw_hex = raw.hex()
    masked = mask_text(_printable(name))  # an ID or phone in a file name is personal data
    return masked, (raw_hex if masked == _printable(name) else None)


def _printable(name: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in name)


def shown_name(name: str) -> str:
    """A name short enough for one line and a 255-character column."""
    if len(name) <= SHOWN_CHARS:
        return name
    return f"{name[: SHOWN_CHARS - 20]}…{name[-19:]}"


def _keep_protected_only(target: Path, limit: int) -> str:
    """A file set aside (rejected or duplicate) that may hold clear personal data is not
    kept: only its checksum, size and reason are (the unit still has its file). Returns
    what to add to the reason."""
    body = target.read_bytes()
    if not file_holds_identifiers(body, limit):
        return ""
    target.unlink()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return (
        f"；原文件含疑似个人信息（身份证号/手机号），未保存（sha256 {digest}…，{len(body)} 字节）"
    )


class FileDropSource:
    """Takes in the period's dropped files and yields the current file of each unit."""

    def __init__(self, feed: FeedSpec, root: Path | None = None) -> None:
        self.feed = feed
        self.folder = drop_dir(feed, root)
        self.limits = feed.limits
        self.on_unparseable: Callable[[Page, str], None] | None = None  # files never retry
        self.notes: list[str] = []
        self._intake_done = False
        self._reported: set[str] = set()

    def _note(self, text: str) -> None:
        if text not in self._reported:
            self._reported.add(text)
            self.notes.append(text)
            log.warning("%s: %s", self.feed.name, text)

    # --- intake --------------------------------------------------------------------------

    def _sidecars(self, period: str | None = None) -> list[dict[str, Any]]:
        """The sidecars of accepted files; a broken one (empty, corrupt, incomplete) is
        reported and skipped, never blocking the other files or periods."""
        base = self.folder / PROCESSED
        out = []
        for path in sorted(base.glob(f"{period}/*.json" if period else "*/*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or not data.keys() >= SIDECAR_KEYS:
                    raise ValueError("缺少字段")
            except (OSError, ValueError) as exc:
                empty = path.exists() and path.stat().st_size == 0
                problem = "为空" if empty else f"内容无法解析：{type(exc).__name__}"
                self._note(
                    f"登记文件 {PROCESSED}/{path.parent.name}/{path.name} 已损坏（{problem}），"
                    f"已跳过：其台账文件 {path.stem}.xlsx 不计入 {path.parent.name} 的批次；"
                    "请修复或删除该登记文件后重新报送该台账"
                )
                continue
            out.append(data)
        return out

    def _set_aside(self, path: Path, kind: str, reason: str, sha: str, name: dict) -> None:
        """Move a file aside under a safe generated name, with ``.reason.txt`` and a
        ``.json`` keeping the original name."""
        suffix = path.suffix.lower() if _SAFE_SUFFIX.match(path.suffix.lower()) else ".bin"
        target = self.folder / kind / f"{_stamp()}-{sha[:12]}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        reason += _keep_protected_only(target, self.limits.max_uncompressed_bytes)
        write_atomic(target.with_name(target.name + ".reason.txt"), reason + "\n")
        record = {**name, "sha256": sha, "reason": reason, "at": datetime.now(UTC).isoformat()}
        write_atomic(
            target.with_name(target.name + ".json"), json.dumps(record, ensure_ascii=False)
        )
        self._note(reason)

    def _waiting(self) -> list[Path]:
        """The dropped files, oldest first; hidden files, folders and links reported."""
        files = []
        for path in self.folder.glob("*"):
            shown = shown_name(original_name(path)[0])
            if path.name.startswith((".", "~$")):
                self._note(
                    f"已忽略隐藏文件 {shown}（以“.”或“~$”开头的文件不处理；"
                    "如是台账请改名后重新报送）"
                )
            elif path.is_symlink() or (path.is_dir() and not path.name.startswith("_")):
                self._note(f"已忽略 {shown}：不是普通文件（文件夹或链接），请直接投递台账文件")
            elif path.is_file():
                files.append(path)
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def _out_of_range(self, period: str) -> str | None:
        p, last = Period.parse(period), last_full_month()
        if p < Period.parse(self.feed.first_period):
            return (
                f"统计期 {period} 早于{self.feed.title}的起始期 {self.feed.first_period}，不能入库"
            )
        if p > last:
            return (
                f"统计期 {period} 尚未结束（目前可入库的最近一期为 {last}），不能入库；"
                "请在该期结束后重新报送"
            )
        return None

    def intake(self, period: str) -> None:
        """Move every dropped file to ``_processed/<its period>`` (duplicates, unreadable
        files and files of periods that cannot load aside, with the reason).

        Each file is read once, whatever period is being run: a file of another period is
        filed under that period, noted, and loads with that period's run. Every file ends
        taken or set aside with a reason; one file's failure never stops the others.
        Done once per source object (one run).
        """
        if self._intake_done:
            return
        self._intake_done = True
        known = {s["sha256"]: s for s in self._sidecars()}
        seqs: dict[str, int] = {}
        for path in self._waiting():
            full, raw_hex = original_name(path)
            name = {"file": shown_name(full), "original_name": full}
            if raw_hex:
                name["original_name_bytes"] = raw_hex
            try:
                self._take(path, period, name, known, seqs)
            except Exception as exc:  # anything unforeseen: this file only
                log.exception("%s: intake of %s failed", self.feed.name, name["file"])
                reason = f"文件 {name['file']}：处理时出错（{type(exc).__name__}），未入库"
                try:
                    sha = hashlib.sha256(path.read_bytes()).hexdigest()
                    self._set_aside(path, REJECTED, reason, sha, name)
                except OSError:
                    self._note(reason + "，且无法移出投递目录")

    def _take(self, path: Path, period: str, name: dict, known: dict, seqs: dict) -> None:
        body = path.read_bytes()
        sha = hashlib.sha256(body).hexdigest()
        shown = name["file"]
        if sha in known:
            self._set_aside(
                path, DUPLICATES, self._duplicate_reason(shown, sha, known[sha]), sha, name
            )
            return
        try:
            parsed = read_workbook(self.feed, body, shown, self.limits)
            problem = self._out_of_range(parsed.period)
            if problem:
                raise FileRejected(f"文件 {shown}（{parsed.unit}）：{problem}")
        except FileRejected as exc:
            self._set_aside(path, REJECTED, f"{exc}；该文件未入库，请更正后重新报送", sha, name)
            return
        if parsed.period != period:
            self._note(
                f"文件 {shown}（{parsed.unit}）为 {parsed.period} 的台账，已登记，"
                f"将在 {parsed.period} 的运行中入库（本次运行 {period}）"
            )
        if parsed.period not in seqs:
            seqs[parsed.period] = len(
                list((self.folder / PROCESSED / parsed.period).glob("*.xlsx"))
            )
        seq = seqs[parsed.period] = seqs[parsed.period] + 1
        target = self.folder / PROCESSED / parsed.period / f"{seq:05d}-{sha[:12]}.xlsx"
        target.parent.mkdir(parents=True, exist_ok=True)
        sidecar = {
            **name,
            "sha256": sha,
            "stream": parsed.stream,
            "unit": parsed.unit,
            "period": parsed.period,
            "version": parsed.version,
            "seq": seq,
            "stored_as": target.name,
            "received_at": datetime.now(UTC).isoformat(),
            "notes": parsed.notes,
        }
        shutil.move(path, target)
        write_atomic(target.with_suffix(".json"), json.dumps(sidecar, ensure_ascii=False, indent=2))
        known[sha] = sidecar

    def _duplicate_reason(self, shown: str, sha: str, first: dict[str, Any]) -> str:
        reason = (
            f"文件 {shown} 与已处理的 {first['file']}（{first['period']}）内容相同"
            f"（sha256 {sha[:12]}），不重复入库"
        )
        current = self.current_files(first["period"]).get((first["stream"], first["unit"]))
        if current and current["sha256"] != sha:
            reason += (
                f"；这是{first['unit']}的旧版本，{first['period']} 现采用之后报送的 "
                f"{current['file']}，重发旧版本不会替换它（如需恢复请修改后重新报送）"
            )
        return reason

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
        write_atomic(stored, page.body)

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
        number = 0
        for sidecar in mine:
            path = self.folder / PROCESSED / period / sidecar["stored_as"]
            try:
                body = path.read_bytes()
                records = read_workbook(self.feed, body, sidecar["file"], self.limits).records
            except (OSError, FileRejected) as exc:
                self._note(
                    f"已登记的文件 {sidecar['file']}（{sidecar['unit']}）无法读取，未入库：{exc}"
                )
                continue
            for note in sidecar.get("notes", []):
                self._note(note)
            number += 1
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


def drop_overview(feed: FeedSpec, root: Path | None = None, shown: int = 5) -> dict[str, Any]:
    """What an operator should see of the drop folder (``cm status``), read-only: files
    still waiting, the latest rejected files with their reasons, the accepted files per
    period with the newest arrival (to compare with the loaded batch), broken sidecars."""
    source = FileDropSource(feed, root)
    folder = source.folder
    waiting = source._waiting() if folder.is_dir() else []
    reasons = sorted(
        (folder / REJECTED).glob("*.reason.txt"), key=lambda p: (p.stat().st_mtime_ns, p.name)
    )
    periods: dict[str, dict[str, Any]] = {}
    for sidecar in source._sidecars():
        entry = periods.setdefault(sidecar["period"], {"files": 0, "newest": ""})
        entry["files"] += 1
        entry["newest"] = max(entry["newest"], sidecar["received_at"])
    return {
        "folder": str(folder),
        "waiting": len(waiting),
        "rejected": len(reasons),
        "latest_rejections": [
            p.read_text(encoding="utf-8", errors="replace").strip() for p in reasons[-shown:]
        ],
        "periods": dict(sorted(periods.items())),
        "problems": list(source.notes),
    }
