"""Verification (核实) of warnings: every warning of a loaded batch opens a review item.

As in national enterprise reporting, a 核实性审核 warning does not stop the data: the
responsible unit confirms or explains it. Each failed ``warning`` check of a batch that
loads opens one item (``audit_review_item``) per finding (a plausibility rule names the
entity, ``plausibility.py``) or per check (a suite's warning), owned by the responsible unit:
the reporting unit itself for ledgers, else the feed's first responsible unit in the
measure catalog (passed in by the pipeline: validation does not read the catalog).

States: ``open`` → ``explained`` (text, who, when) → ``accepted`` or ``rejected``; an item
may be accepted or rejected straight from ``open``. Rejecting quarantines the item's rows
(``audit_quarantine``, reason ``review_rejected``), removes them from the batch's staging
and core rows, and the caller recomputes the affected snapshots. Items are keyed by batch,
check and entity, so validating the same batch again neither duplicates nor reopens them,
and a rejection survives it (:func:`reapply_rejections`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.loader import lock_period, now

if TYPE_CHECKING:
    from consumption_monitor.validation.runner import Outcome, ValidationReport

STATUSES = ("open", "explained", "accepted", "rejected")
STATUS_LABELS = schema.REVIEW_STATUS_LABELS
UNRESOLVED = ("open",)  # figures resting on these are marked in the report
REJECTED_REASON = "review_rejected"
MESSAGE_ROWS = 5
MAX_ROWS = 1000  # rows kept per item (a suite warning may name many; the count is in its message)


class ReviewError(ValueError):
    """A review action that cannot be done (unknown item, wrong state): one line."""


def _item_id(batch_id: str, stream: str, index: int, entity: str | None) -> str:
    raw = f"{batch_id}|{stream}|{index}|{entity or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _owner(feed: str, stream: str, entity: str | None, default: str) -> str:
    """The reporting unit for a ledger finding about a unit, else the feed's owner."""
    spec = load_feed(feed).stream(stream)
    unit = next((c for c in spec.columns if c.name == "unit" and c.choices), None)
    if unit is not None and entity in unit.choices:
        return str(entity)
    return default


def _items_of(report: ValidationReport, outcome: Outcome) -> list[dict[str, Any]]:
    keys = report.row_keys.get(outcome.stream, {})
    findings = outcome.kwargs.get("findings") if isinstance(outcome.kwargs, dict) else None

    def rows(numbers: list[int]) -> str:
        return json.dumps(
            [{"row": n, "key": keys.get(n, {})} for n in numbers[:MAX_ROWS]],
            ensure_ascii=False,
            default=str,
        )

    if findings:
        return [
            {
                "entity_key": str(f["entity"])[:128],
                "entity_label": str(f["label"])[:255],
                "message": f["message"],
                "rows": rows(list(f["rows"])),
            }
            for f in findings
        ]
    sample = "，".join(str(s) for s in outcome.sample[:MESSAGE_ROWS])
    message = f"{outcome.description}：不符 {outcome.unexpected_count or 0} 行" + (
        f"（样例 {sample}）" if sample else ""
    )
    return [
        {
            "entity_key": None,
            "entity_label": None,
            "message": message,
            "rows": rows(outcome.unexpected_rows),
        }
    ]


def open_items(conn: Connection, report: ValidationReport, owner: str, at: datetime) -> int:
    """One item per warning finding of a batch that loads; returns the items added."""
    if report.rejected:
        return 0
    items = schema.audit_review_item
    known = set(
        conn.execute(select(items.c.item_id).where(items.c.batch_id == report.batch_id)).scalars()
    )
    new = []
    for outcome in report.failures("warning"):
        for item in _items_of(report, outcome):
            item_id = _item_id(report.batch_id, outcome.stream, outcome.index, item["entity_key"])
            if item_id in known:
                continue
            known.add(item_id)
            new.append(
                {
                    **item,
                    "item_id": item_id,
                    "feed": report.feed,
                    "period": report.period,
                    "batch_id": report.batch_id,
                    "stream": outcome.stream,
                    "rule": outcome.label()[:255],
                    "severity": outcome.severity,
                    "owner": _owner(report.feed, outcome.stream, item["entity_key"], owner),
                    "status": "open",
                    "created_at": at,
                }
            )
    if new:
        conn.execute(insert(items), new)
    return len(new)


def list_items(
    engine: Engine,
    *,
    feed: str | None = None,
    period: str | None = None,
    status: str | None = None,
    current_only: bool = True,
    periods: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Items, newest periods first; by default only those of current batches."""
    items, batch = schema.audit_review_item, schema.audit_load_batch
    stmt = select(items).order_by(items.c.period.desc(), items.c.feed, items.c.stream)
    if current_only:
        stmt = stmt.join(batch, batch.c.batch_id == items.c.batch_id).where(batch.c.is_current)
    if feed:
        stmt = stmt.where(items.c.feed == feed)
    if period:
        stmt = stmt.where(items.c.period == period)
    if periods:
        stmt = stmt.where(items.c.period >= periods[0], items.c.period <= periods[1])
    if status:
        stmt = stmt.where(items.c.status == status)
    with engine.connect() as conn:
        return [_plain(r) for r in conn.execute(stmt).mappings()]


def _plain(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["rows"] = json.loads(out["rows"] or "[]")
    return out


def get_item(conn: Connection, item_id: str) -> dict[str, Any]:
    """An item by its id or a unique prefix of it (at least 6 characters)."""
    items = schema.audit_review_item
    if len(item_id) < 6:
        raise ReviewError(
            f"核实项编号至少 6 位：{item_id!r} (an item id has at least 6 characters)"
        )
    found = conn.execute(select(items).where(items.c.item_id.startswith(item_id))).mappings()
    rows = [dict(r) for r in found]
    if len(rows) != 1:
        what = "不存在" if not rows else "不唯一"
        raise ReviewError(f"核实项 {item_id} {what} (no single review item {item_id})")
    return _plain(rows[0])


def items_of_batch(conn: Connection, batch_id: str) -> list[dict[str, Any]]:
    items = schema.audit_review_item
    stmt = select(items).where(items.c.batch_id == batch_id).order_by(items.c.stream)
    return [_plain(r) for r in conn.execute(stmt).mappings()]


def describe(item: dict[str, Any]) -> str:
    """One line: status, owner, the warning and, once given, the explanation."""
    line = (
        f"【{STATUS_LABELS.get(item['status'], item['status'])}】{item['owner']}：{item['message']}"
    )
    if item.get("explanation"):
        line += f"；说明（{item['explained_by']}）：{item['explanation']}"
    return line


def show(engine: Engine, item_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return get_item(conn, item_id)


def explain(engine: Engine, item_id: str, text: str, who: str) -> dict[str, Any]:
    """The responsible unit's explanation: the item becomes ``explained``."""
    if not text.strip() or not who.strip():
        raise ReviewError("说明和填写人不能为空 (an explanation needs text and a name)")
    return _change(
        engine,
        item_id,
        ("open", "explained"),
        status="explained",
        explanation=text.strip(),
        explained_by=who.strip()[:64],
        explained_at=now(),
    )


def accept(engine: Engine, item_id: str, who: str, note: str | None = None) -> dict[str, Any]:
    """The figure stands as reported (after an explanation, or confirmed as it is)."""
    return _change(
        engine,
        item_id,
        ("open", "explained"),
        status="accepted",
        decided_by=who.strip()[:64],
        decided_at=now(),
        decision_note=note,
    )


def _change(engine: Engine, item_id: str, allowed: tuple[str, ...], **values: Any):
    items = schema.audit_review_item
    with engine.begin() as conn:
        item = get_item(conn, item_id)
        if item["status"] not in allowed:
            raise ReviewError(
                f"核实项 {item['item_id'][:12]} 状态为 {item['status']}，不能再改 "
                f"(item is {item['status']})"
            )
        conn.execute(update(items).where(items.c.item_id == item["item_id"]).values(**values))
        return get_item(conn, item["item_id"])


def reject(engine: Engine, item_id: str, who: str, note: str | None = None) -> dict[str, Any]:
    """The figure is wrong: quarantine the item's rows and take them out of the batch's
    staging and core rows, in one transaction. The caller recomputes the snapshots."""
    items, batch = schema.audit_review_item, schema.audit_load_batch
    with engine.begin() as conn:
        item = get_item(conn, item_id)
        if item["status"] not in ("open", "explained"):
            raise ReviewError(f"核实项状态为 {item['status']}，不能驳回 (item is {item['status']})")
        lock_period(conn, item["feed"], item["period"])
        current = conn.execute(
            select(batch.c.is_current).where(batch.c.batch_id == item["batch_id"])
        ).scalar()
        if not current:
            raise ReviewError("该核实项所属批次已被替代，不能驳回 (its batch is superseded)")
        if not any(row.get("key") for row in item["rows"]):
            raise ReviewError(
                "该核实项没有可定位的行，不能驳回；请责任单位更正后重报 "
                "(the item names no row that can be held back)"
            )
        at = now()
        conn.execute(
            update(items)
            .where(items.c.item_id == item["item_id"])
            .values(
                status="rejected", decided_by=who.strip()[:64], decided_at=at, decision_note=note
            )
        )
        _quarantine(conn, {**item, "status": "rejected"}, at)
        return get_item(conn, item["item_id"])


def _quarantine(conn: Connection, item: dict[str, Any], at: datetime) -> int:
    """Hold back a rejected item's rows: quarantine rows (once), staging and core rows out."""
    q, batch = schema.audit_quarantine, schema.audit_load_batch
    stream = load_feed(item["feed"]).stream(item["stream"])
    core = schema.core(stream)
    stg = schema.staging(stream) if stream.staging else None
    held = set(
        conn.execute(
            select(q.c.row_number).where(
                q.c.batch_id == item["batch_id"], q.c.stream == item["stream"]
            )
        ).scalars()
    )
    added = 0
    for row in item["rows"]:
        key = row.get("key") or {}
        if not key:
            continue
        match = [core.c[k] == v for k, v in key.items()]
        found = conn.execute(select(core).where(and_(*match))).mappings().first()
        if row["row"] not in held:
            raw = dict(found) if found else key
            conn.execute(
                insert(q).values(
                    batch_id=item["batch_id"],
                    stream=item["stream"],
                    row_number=row["row"],
                    feed=item["feed"],
                    period=item["period"],
                    failed_expectations=json.dumps([f"{REJECTED_REASON}[{item['rule']}]"]),
                    raw_values=json.dumps(raw, ensure_ascii=False, default=str, sort_keys=True),
                    entity_key=(item["entity_key"] or "")[:64] or None,
                    quarantined_at=at,
                )
            )
            held.add(row["row"])
            added += 1
        conn.execute(delete(core).where(and_(*match, core.c.batch_id == item["batch_id"])))
        if stg is not None:
            stg_match = [stg.c[k] == v for k, v in key.items()]
            conn.execute(delete(stg).where(and_(*stg_match, stg.c.batch_id == item["batch_id"])))
    conn.execute(
        update(batch)
        .where(batch.c.batch_id == item["batch_id"])
        .values(rows_quarantined=func.coalesce(batch.c.rows_quarantined, 0) + added)
    )
    return added


def reapply_rejections(conn: Connection, batch_id: str, at: datetime) -> None:
    """After a batch's quarantine is rewritten (validated again), its rejected items'
    rows stay held back."""
    items = schema.audit_review_item
    rejected = conn.execute(
        select(items).where(items.c.batch_id == batch_id, items.c.status == "rejected")
    ).mappings()
    for item in [_plain(r) for r in rejected]:
        _quarantine(conn, item, at)
