"""What the month partitions of the warehouse hold, and the build tables dead loads left
(``cm partitions``).

A partitioned load builds its month in a standalone table committed on side connections
(``warehouse/partitions.py``). A load that fails drops it, and the next load of the same
month drops one a killed process left; a month that is never loaded again keeps it: no
reader sees it, but it takes the month's disk (~190 MB for 1M trade-in rows with its
indexes). :func:`drop_left_behind` drops those, each under its period's lock taken without
waiting, so a load running now keeps its table (it is reported as skipped); ``cm status``
warns of them (:func:`left_behind_warnings`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, Table, text

from consumption_monitor.feeds.spec import list_feeds, load_feed
from consumption_monitor.warehouse import partitions, schema
from consumption_monitor.warehouse.loader import try_lock_period


def partitioned_cores() -> list[tuple[str, Table]]:
    """(feed name, core table) of every stream declared ``partitioned``."""
    out = []
    for name in list_feeds():
        feed = load_feed(name)
        out += [(feed.name, schema.core(s)) for s in feed.streams if s.partitioned]
    return out


def overview(engine: Engine) -> dict[str, Any]:
    """Per partitioned core table: its month partitions and the build tables attached to
    nothing (with their bytes). Nothing on SQLite, which keeps one table."""
    tables: list[dict[str, Any]] = []
    if engine.dialect.name != "postgresql":
        return {"partitioned": False, "tables": tables}
    with engine.connect() as conn:
        for feed, core in partitioned_cores():
            unattached = [
                {"name": name, "period": period, "bytes": _bytes(conn, name)}
                for name, period in partitions.unattached(conn, core)
            ]
            tables.append(
                {
                    "feed": feed,
                    "table": core.name,
                    "partitions": partitions.attached(conn, core),
                    "unattached": unattached,
                }
            )
    return {"partitioned": True, "tables": tables}


def _bytes(conn: Connection, name: str) -> int:
    return int(
        conn.execute(
            text("select coalesce(pg_total_relation_size(to_regclass(:name)), 0)"),
            {"name": partitions.qualified(name)},
        ).scalar()
    )


def _under_lock(engine: Engine) -> Iterator[tuple[dict[str, str], Connection | None]]:
    """Each build table attached to nothing, with a connection whose transaction holds its
    period's lock (taken without waiting, released when the caller moves on), or None when a
    load holds that lock (the table is the running load's). A table a load attached or
    dropped meanwhile is left out."""
    if engine.dialect.name != "postgresql":
        return
    for feed, core in partitioned_cores():
        with engine.connect() as conn:
            found = partitions.unattached(conn, core)
        for name, period in found:
            entry = {"feed": feed, "table": name, "period": period}
            with engine.begin() as conn:
                if not try_lock_period(conn, feed, period):
                    yield entry, None
                elif (name, period) in partitions.unattached(conn, core, period):
                    yield entry, conn


def drop_left_behind(engine: Engine) -> dict[str, list[dict[str, str]]]:
    """Drop every build table attached to nothing whose period no load holds now; returns
    the tables dropped and those skipped (a load of that period is running)."""
    done: dict[str, list[dict[str, str]]] = {"dropped": [], "skipped": []}
    for entry, conn in _under_lock(engine):
        if conn is None:
            done["skipped"].append(entry)
        else:
            conn.execute(text(f"drop table if exists {partitions.qualified(entry['table'])}"))
            done["dropped"].append(entry)
    return done


def left_behind_warnings(engine: Engine) -> list[str]:
    """``cm status`` lines (one a feed) for the build tables killed loads left: attached to
    nothing and their period's lock free (a running load's own table is not one)."""
    found: dict[str, list[tuple[str, int]]] = {}
    for entry, conn in _under_lock(engine):
        if conn is not None:
            found.setdefault(entry["feed"], []).append(
                (entry["period"], _bytes(conn, entry["table"]))
            )
    return [
        f"{feed} 有 {len(tables)} 个载入中断后遗留的建表（{'、'.join(p for p, _ in tables)}，"
        f"共 {_mb(sum(b for _, b in tables))}）：不影响查询，但占用磁盘；"
        "可用 cm partitions --drop 删除"
        for feed, tables in found.items()
    ]


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def render(data: dict[str, Any]) -> str:
    """``cm partitions`` in Chinese: what was dropped or skipped, then each table's months
    and its build tables attached to nothing."""
    lines = [
        f"已删除 {d['table']}（{d['feed']} {d['period']}）" for d in data.get("dropped", [])
    ] + [
        f"跳过 {d['table']}：{d['feed']} {d['period']} 正在载入 (a load is running)"
        for d in data.get("skipped", [])
    ]
    if "dropped" in data and not data["dropped"] and not data["skipped"]:
        lines.append("没有需要删除的建表 (nothing to drop)")
    if not data["partitioned"]:
        lines.append(
            "此仓库不分区：月分区仅用于 PostgreSQL (no month partitions on this warehouse)"
        )
        return "\n".join(lines)
    for table in data["tables"]:
        months = table["partitions"]
        rows = sum(p["rows_estimate"] or 0 for p in months)
        size = sum(p["bytes"] for p in months)
        unknown = sum(1 for p in months if p["rows_estimate"] is None)
        lines.append(
            f"{table['table']}（{table['feed']}）：{len(months)} 个月分区，"
            f"约 {rows:,} 行{f'（{unknown} 个月行数未统计）' if unknown else ''}，{_mb(size)}"
        )
        for p in months:
            estimate = (
                "行数未统计 (not analysed yet)"
                if p["rows_estimate"] is None
                else f"约 {p['rows_estimate']:,} 行"
            )
            lines.append(f"  {p['period']}  {estimate}  {_mb(p['bytes'])}")
        left = table["unattached"]
        if left:
            lines.append(
                f"  未挂接的建表 {len(left)} 个，共 {_mb(sum(t['bytes'] for t in left))}"
                "（载入中断遗留，或正在载入）："
            )
            lines += [f"    {t['period']}  {t['name']}  {_mb(t['bytes'])}" for t in left]
            if "dropped" not in data:
                lines.append("  用 cm partitions --drop 删除遗留的建表（正在载入的月份会跳过）")
    return "\n".join(lines)
