"""``cm status``: what operators watch, one line per feed.

Per feed: the last period loaded with its batch state, validation outcome, rows and
quarantine; the newest batch seen when it is not that one (e.g. a rejected later period);
periods past their due date and not loaded; and the alerts still open (not yet closed by a
recovery). Read-only, from the audit tables and the feed specs.

Warnings above the feeds (issue 15): the working-day calendar running out (deadlines
counted by weekends alone past the file's last year),, periods still pulled again because
rows are open (their rates provisional), and sources of the same figure that disagree
(``indicators/reconcile.py``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from consumption_monitor.alerts.lateness import due_date, late_periods
from consumption_monitor.common.periods import Period, bureau_today
from consumption_monitor.common.workdays import fallback_warning, load_calendar
from consumption_monitor.feeds.spec import list_feeds, load_feed
from consumption_monitor.validation.causes import root_causes
from consumption_monitor.warehouse import schema

VERDICTS = {"passed": "通过", "warning": "有警告", "rejected": "拒收", None: "—"}


def _batch(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "period": row.period,
        "batch_id": row.batch_id,
        "revision": row.revision,
        "status": row.status,
        "verdict": row.verdict,
        "rows_received": row.rows_received,
        "rows_loaded": row.rows_loaded,
        "rows_quarantined": row.rows_quarantined,
        "seen_at": row.first_seen_at.isoformat() if row.first_seen_at else None,
    }


def feed_status(engine: Engine, feed: str, today: date) -> dict[str, Any]:
    spec = load_feed(feed)
    b, a = schema.audit_load_batch, schema.audit_alert
    with engine.connect() as conn:
        current = conn.execute(
            select(b).where(b.c.feed == feed, b.c.is_current).order_by(b.c.period.desc()).limit(1)
        ).first()
        newest = conn.execute(
            select(b).where(b.c.feed == feed).order_by(b.c.first_seen_at.desc()).limit(1)
        ).first()
        loaded_at = dict(
            conn.execute(
                select(b.c.period, b.c.first_seen_at).where(b.c.feed == feed, b.c.is_current)
            ).all()
        )
        loaded = set(loaded_at)
        # why the newest batch (when it is not the loaded one) failed: its root causes
        causes = root_causes(conn, feed, newest.period) if newest is not None else []
        alerts = conn.execute(
            select(a.c.period, a.c.kind, a.c.level, a.c.title, func.min(a.c.sent_at))
            .where(
                a.c.feed == feed,
                a.c.status == "sent",
                a.c.resolved_at.is_(None),
                a.c.kind != "recovery",
            )
            .group_by(a.c.period, a.c.kind, a.c.level, a.c.title)
            .order_by(a.c.period)
        ).fetchall()
    late = late_periods(spec, today, loaded)
    next_period = Period.parse(current.period).shift(1) if current else Period.of(today).shift(-1)
    while next_period.month not in spec.published_months:
        next_period = next_period.shift(1)
    return {
        "feed": feed,
        "title": spec.title,
        "last_loaded": _batch(current),
        "newest_batch": None
        if newest is None or (current and newest.batch_id == current.batch_id)
        else {**_batch(newest), "root_causes": [c.line() for c in causes]},
        "late": [{"period": x.period, "due": x.due.isoformat()} for x in late],
        "next_due": {"period": str(next_period), "due": due_date(spec, next_period).isoformat()},
        "open_alerts": [
            {
                "period": r.period,
                "kind": r.kind,
                "level": r.level,
                "title": r.title,
                "since": r[4].isoformat() if r[4] else None,
            }
            for r in alerts
        ],
        "drop": _drop(spec, loaded_at) if spec.source_kind == "file" else None,
        "repull": _repull(engine, spec),
        "review": _review(engine, feed),
    }


REVIEW_SHOWN = 5


def _review(engine: Engine, feed: str) -> dict[str, Any]:
    """Review items (核实) of the current batches: counts per state, the open ones."""
    from consumption_monitor.validation.review import describe, list_items

    items = list_items(engine, feed=feed)
    counts = {s: sum(1 for i in items if i["status"] == s) for s in ("open", "explained")}
    pending = [i for i in items if i["status"] in ("open", "explained")]
    return {
        **counts,
        "items": [
            {"item_id": i["item_id"], "period": i["period"], "line": describe(i)}
            for i in pending[:REVIEW_SHOWN]
        ],
    }


def _repull(engine: Engine, spec) -> dict[str, Any] | None:
    """Periods with open rows that runs pull again (spec ``repull:``), and stale ones."""
    if spec.repull is None:
        return None
    from sqlalchemy.exc import DBAPIError

    from consumption_monitor.pipeline.repull import open_periods

    try:
        found = open_periods(engine, spec.name)
    except DBAPIError:  # no core table yet (a warehouse not migrated)
        return None
    return {"open": found.counts, "due": found.due, "stale": found.stale}


def _utc(value: datetime | str) -> datetime:
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _drop(spec, loaded_at: dict[str, datetime]) -> dict[str, Any]:
    """The drop folder of a file feed: rejected files with their reasons, and periods with
    accepted files newer than their loaded batch (or not loaded at all)."""
    from consumption_monitor.feeds.sources.file_drop import drop_overview

    overview = drop_overview(spec)
    overview["unloaded"] = [
        {"period": period, "files": entry["files"], "newest": entry["newest"]}
        for period, entry in overview.pop("periods").items()
        if period not in loaded_at or _utc(entry["newest"]) > _utc(loaded_at[period])
    ]
    return overview


def operations_status(engine: Engine, today: date | None = None) -> dict[str, Any]:
    today = today or bureau_today()
    return {
        "as_of": today.isoformat(),
        "warnings": status_warnings(engine, today),
        "feeds": [feed_status(engine, feed, today) for feed in list_feeds()],
    }


def status_warnings(engine: Engine, today: date) -> list[str]:
    """Lines every operator must see whatever the feed: the calendar's end, sources of
    the same figure that disagree (last full month), build tables killed loads left."""
    from consumption_monitor.common.periods import last_full_month
    from consumption_monitor.indicators.reconcile import reconciliation_warnings
    from consumption_monitor.warehouse.partition_upkeep import left_behind_warnings

    out = []
    calendar_line = fallback_warning(load_calendar(), today)
    if calendar_line:
        out.append(calendar_line)
    out += reconciliation_warnings(engine, str(last_full_month(today)))
    out += left_behind_warnings(engine)
    return out


def render(data: dict[str, Any]) -> str:
    lines = [f"运行状态（{data['as_of']}）"]
    lines += [f"【提醒】{line}" for line in data.get("warnings", ())]
    for f in data["feeds"]:
        last = f["last_loaded"]
        if last:
            head = (
                f"最近入库 {last['period']}（批次 {last['batch_id']} 第{last['revision']}版，"
                f"{last['status']}，校验{VERDICTS.get(last['verdict'], last['verdict'])}，"
                f"{last['rows_loaded']} 行，隔离 {last['rows_quarantined'] or 0} 行）"
            )
        else:
            head = "尚无入库数据"
        lines.append(f"\n{f['title']}（{f['feed']}）：{head}")
        newest = f["newest_batch"]
        if newest:
            lines.append(
                f"  最新批次 {newest['period']} {newest['batch_id']}：{newest['status']}，"
                f"校验{VERDICTS.get(newest['verdict'], newest['verdict'])}"
            )
            lines += [f"    根本原因：{line}" for line in newest.get("root_causes", ())]
        if f["late"]:
            late = "、".join(f"{x['period']}（应于 {x['due']}）" for x in f["late"])
            lines.append(f"  逾期未入库：{late}")
        else:
            nxt = f["next_due"]
            lines.append(f"  无逾期；下一期 {nxt['period']} 应于 {nxt['due']} 前入库")
        for alert in f["open_alerts"]:
            lines.append(f"  未解除告警 {alert['period']}：{alert['title']}")
        review = f.get("review") or {}
        if review.get("open") or review.get("explained"):
            lines.append(
                f"  核实项：待核实 {review['open']} 项，已说明待确认 {review['explained']} 项"
                "（cm review list）"
            )
            lines += [f"    {i['item_id'][:12]} {i['period']} {i['line']}" for i in review["items"]]
        lines += _render_drop(f.get("drop"))
        lines += _render_repull(f.get("repull"))
    return "\n".join(lines)


def _render_repull(repull: dict[str, Any] | None) -> list[str]:
    if not repull or not repull["open"]:
        return []
    open_ = "、".join(f"{p}（{n} 件）" for p, n in repull["open"].items())
    lines = [f"  仍有办理中记录的期别：{open_}；每次运行重新抽取，相关比率为暂定值"]
    if repull["stale"]:
        lines.append(f"  超过重新抽取期限、不再自动抽取：{'、'.join(repull['stale'])}")
    return lines


def _render_drop(drop: dict[str, Any] | None) -> list[str]:
    if not drop:
        return []
    lines = []
    if drop["waiting"]:
        lines.append(f"  投递目录待处理文件 {drop['waiting']} 个（下次运行时处理）")
    if drop["unloaded"]:
        pending = "、".join(f"{u['period']}（{u['files']} 个文件）" for u in drop["unloaded"])
        lines.append(f"  已收到但未入库的台账：{pending}（请运行对应期别）")
    if drop["rejected"]:
        lines.append(
            f"  已拒收台账文件 {drop['rejected']} 个（{drop['folder']}/_rejected），最近："
        )
        lines += [f"    {reason}" for reason in drop["latest_rejections"]]
    lines += [f"  投递目录问题：{problem}" for problem in drop["problems"]]
    return lines
