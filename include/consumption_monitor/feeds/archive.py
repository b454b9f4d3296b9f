"""The raw archive: every received page, byte for byte, before it is parsed.

Layout: ``<root>/<feed>/<period>/<batch_id>/<stream>-p<NNNN>.json`` plus ``manifest.json``.
Pages are first written to ``_incoming/<attempt>/``; when the whole batch has arrived the
folder is renamed to its batch id, which is derived from the content, so the same content
extracted twice lands in the same place. An attempt that fails is moved to
``_failed/<attempt>/`` with the reason, so a truncated or malformed body can be inspected.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumption_monitor.feeds.pii_scan import holds_identifiers
from consumption_monitor.feeds.sources.base import Page

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PageRecord:
    stream: str
    number: int
    file: str  # relative to the batch folder
    sha256: str
    bytes: int
    url: str
    params: dict[str, Any]
    status: int
    received_at: str
    format: str = "json"  # manifests written before file sources have no format: JSON
    received_sha256: str | None = None  # of the bytes received, when ``file`` is redacted
    received_bytes: int | None = None
    rows: int | None = None  # records on the page (lets a reader skip to a row)


class Attempt:
    """A folder collecting the pages of one extraction attempt."""

    def __init__(self, root: Path, feed: str, period: str, *, redact: bool = False) -> None:
        self.root = root
        self.feed = feed
        self.period = period
        self.attempt_id = uuid.uuid4().hex[:12]
        self.period_dir = root / feed / period
        self.path = self.period_dir / "_incoming" / self.attempt_id
        self.path.mkdir(parents=True, exist_ok=True)
        self.pages: list[PageRecord] = []
        # personal data: an unparseable body cannot be pseudonymised, so only its checksum
        # and size are kept, never its bytes
        self.redact = redact

    def write_page(self, page: Page, rows: int | None = None) -> PageRecord:
        name = f"{page.stream}-p{page.number:04d}.{page.format}"
        (self.path / name).write_bytes(page.body)
        record = PageRecord(
            stream=page.stream,
            number=page.number,
            file=name,
            sha256=hashlib.sha256(page.body).hexdigest(),
            bytes=len(page.body),
            url=page.url,
            params=page.params,
            status=page.status,
            received_at=page.received_at.isoformat(),
            format=page.format,
            **(page.received or {}),
            rows=rows,
        )
        self.pages.append(record)
        return record

    def keep_unparseable(self, page: Page, reason: str) -> None:
        """Keep a body that could not be parsed (it is retried; the bytes stay for forensics)."""
        stem = f"{page.stream}-p{page.number:04d}.unparseable-{len(list(self.path.iterdir()))}"
        if self.redact or holds_identifiers(page.body):
            digest = hashlib.sha256(page.body).hexdigest()
            reason = (
                f"{reason}\nbody withheld (personal data): sha256 {digest}, {len(page.body)} bytes"
            )
        else:
            (self.path / f"{stem}.bin").write_bytes(page.body)
        (self.path / f"{stem}.txt").write_text(reason, encoding="utf-8")

    def commit(self, batch_id: str, content_sha256: str) -> Path:
        """Move the attempt to its batch folder (kept as is if that batch already exists)."""
        manifest = {
            "feed": self.feed,
            "period": self.period,
            "batch_id": batch_id,
            "content_sha256": content_sha256,
            "extracted_at": datetime.now(UTC).isoformat(),
            "pages": [asdict(p) for p in self.pages],
        }
        (self.path / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        for stray in self.path.glob("*.unparseable-*"):  # retried successfully; evidence
            stray.unlink()  # of the failure is in the logs and audit_load_run
        target = self.period_dir / batch_id
        if target.exists():
            shutil.rmtree(self.path)
        else:
            self.path.rename(target)
        self._tidy()
        return target

    def fail(self, reason: str) -> Path:
        """Keep what arrived under ``_failed`` with the reason beside it."""
        (self.path / "reason.txt").write_text(reason, encoding="utf-8")
        target = self.period_dir / "_failed" / self.attempt_id
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path.rename(target)
        self._tidy()
        return target

    def _tidy(self) -> None:
        incoming = self.period_dir / "_incoming"
        if incoming.exists() and not any(incoming.iterdir()):
            incoming.rmdir()


def read_manifest(batch_dir: Path) -> dict[str, Any]:
    return json.loads((batch_dir / MANIFEST).read_text(encoding="utf-8"))


def iter_pages(batch_dir: Path, stream: str | None = None) -> Iterator[tuple[PageRecord, bytes]]:
    """The archived pages in order (of one stream, or all), one at a time, each checked
    against the sha256 recorded when it was written."""
    for raw in read_manifest(batch_dir)["pages"]:
        record = PageRecord(**raw)
        if stream is not None and record.stream != stream:
            continue
        body = (batch_dir / record.file).read_bytes()
        if hashlib.sha256(body).hexdigest() != record.sha256:
            raise ValueError(f"archived page {batch_dir / record.file} does not match its sha256")
        yield record, body


def read_pages(batch_dir: Path) -> list[tuple[PageRecord, bytes]]:
    """Every archived page in order (small feeds; large ones use :func:`iter_pages`)."""
    return list(iter_pages(batch_dir))
