"""The built-in subcommands of ``cm``: one ``cmd_*`` function each, taking the parsed
arguments and printing text or ``--json``. Heavy imports happen inside the command that
needs them, so ``cm --help`` stays quick."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from consumption_monitor.cli import args as cli_args

#: entry-point group of subcommands added by other packages (see ``command_extensions``)
COMMAND_GROUP = "consumption_monitor.commands"


def _print(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(render(data))


def _url_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        type=cli_args.text,
        help="warehouse URL (default: CM_WAREHOUSE_URL, the Airflow "
        "connection cm_warehouse, or the embedded SQLite file)",
    )


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def cmd_migrate(args: argparse.Namespace) -> int:
    from consumption_monitor.common import config
    from consumption_monitor.warehouse.migrate import upgrade

    revision = upgrade(args.url)
    url = config.warehouse_url(args.url)
    safe = url.split("@")[-1] if "@" in url else url
    _print(
        {"revision": revision, "warehouse": safe},
        args.json,
        lambda d: f"仓库已迁移到版本 {d['revision']}：{d['warehouse']}",
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run extract → validate → load → snapshot without Airflow (periods in the given order)."""
    from consumption_monitor.feeds.pii import pii_key
    from consumption_monitor.feeds.spec import load_feed
    from consumption_monitor.pipeline.catchup import FAILED, run_periods

    spec = load_feed(args.feed)
    if getattr(args, "open", False):
        periods = None
        if args.period or args.start or args.end:
            raise cli_args.UserError("--open 不与 --period/--from/--to 同用", "--open alone")
        if spec.repull is None:
            raise cli_args.UserError(
                f"数据源 {args.feed} 未声明 repull，无需重新抽取", f"{args.feed}: no repull"
            )
    else:
        periods = cli_args.period_span(args.period, args.start, args.end)
    if spec.has_pii:
        pii_key()  # refuse before anything runs: one line instead of a failure per period
    printer = None if args.json else lambda o: print(o.line(), flush=True)
    if periods is None:
        from consumption_monitor.pipeline.repull import repull_open

        found, outcomes = repull_open(args.feed, url=args.url, on_outcome=printer)
        if not args.json:
            print(
                f"仍有未办结记录的期别 {len(found.counts)} 个，已重新抽取 {len(outcomes)} 个",
                end="",
            )
            print(
                f"；超过 {spec.repull.max_months} 个月未再抽取：{'、'.join(found.stale)}"
                if found.stale
                else ""
            )
    else:
        outcomes = run_periods(args.feed, periods, url=args.url, on_outcome=printer)
    _alert_outcomes(args.feed, outcomes, args.url)
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], ensure_ascii=False, indent=2))
    return 1 if any(o.outcome == FAILED for o in outcomes) else 0


def _alert_outcomes(feed: str, outcomes: list[Any], url: str | None) -> None:
    """Alerts of a ``cm run`` on the configured channels, as the feed_catchup task sends
    them (a failed period alerts, a loaded one recovers and warns); none configured: the
    outcome lines are the report. An alert never changes the run's result."""
    import logging

    from consumption_monitor.alerts.channels import configured_channels
    from consumption_monitor.alerts.service import on_catchup_outcomes

    try:
        channels = configured_channels()
        if channels:
            on_catchup_outcomes(feed, outcomes, channels, final=True, url=url)
    except Exception as exc:  # a misconfigured channel or a warehouse gone since
        logging.getLogger(__name__).error("alerts not sent: %s", type(exc).__name__)


def _fmt(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def render_snapshot_table(period: str, rows: list[dict[str, Any]]) -> str:
    """The snapshot as a text table: one line per KPI, its components and status."""
    from consumption_monitor.common.terminal import pad
    from consumption_monitor.indicators.catalog import COUNT_UNITS

    if not rows:
        return f"{period} 暂无快照"
    widths = (4, 40, 14, 8, 10, 7, 7, 14, 8)
    header = ("措施", "指标", "实际", "目标", "预期", "完成度", "同比%", "状态", "进度方式")
    lines = [
        f"{period} 指标快照（实际为本年累计；预期为按进度应完成；完成度 = 实际 / 预期；"
        "同比带 * 为可比口径计算）",
        "  ".join(
            pad(h, w, right=1 < i < 7) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
        + "  数据期   校验",
    ]
    for r in rows:
        has_target = r["target_value"] is not None
        target = f"{r['target_comparator']}{r['target_value']:g}" if has_target else ""
        count = r["unit"] in COUNT_UNITS
        actual = (
            r["milestone_status"]
            if r["kind"] == "milestone"
            else _fmt(r["actual_ytd"], 0 if count else 2)
        )
        cells = (
            str(r["measure_no"]),
            r["name"][:20],
            actual or "—",
            target,
            _fmt(r["expected_to_date"]),
            _fmt(r["completion_ratio"]),
            _fmt(r["yoy_ytd_pct"], 1)
            + ("*" if r["yoy_ytd_pct"] is not None and r["yoy_basis"] == "computed" else ""),
            r["status"] or "监测指标",
            r.get("pace_label") or "",
        )
        lines.append(
            "  ".join(
                pad(c, w, right=1 < i < 7)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + f"  {r['data_period'] or '—':<7}  {r['validation_state'] or '—'}"
        )
    return "\n".join(lines)


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Compute the period's snapshot (unless --no-compute) and print the latest one."""
    from consumption_monitor.common.periods import Period
    from consumption_monitor.indicators.snapshots import compute_snapshot, read_snapshot
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.migrate import upgrade

    period = str(Period.parse(args.period))
    engine = engine_for(args.url) if args.url else engine_for(None)
    if not args.no_compute:
        upgrade(args.url, engine=engine)
        compute_snapshot(engine, period)
    rows = read_snapshot(engine, period)
    _print(rows, args.json, lambda d: render_snapshot_table(period, d))
    return 0 if rows else 1


def cmd_report(args: argparse.Namespace) -> int:
    """Write the period's HTML report and XLSX workbook (snapshot computed first)."""
    from pathlib import Path

    from consumption_monitor.common.periods import Period
    from consumption_monitor.indicators.report import write_report
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.migrate import upgrade

    engine = engine_for(args.url) if args.url else engine_for(None)
    upgrade(args.url, engine=engine)
    out = Path(args.out) if args.out else None
    written = write_report(engine, str(Period.parse(args.period)), out)
    _print(
        written, args.json, lambda d: f"已生成 {d['period']} 月报：\n  {d['html']}\n  {d['xlsx']}"
    )
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """Generate the data dictionary (docs/data-dictionary.md) from the schema."""
    from pathlib import Path

    from consumption_monitor.warehouse.dictionary import DICTIONARY_FILE, write_dictionary

    path = write_dictionary(Path(args.out) if args.out else DICTIONARY_FILE)
    _print({"file": str(path)}, args.json, lambda d: f"数据字典已生成：{d['file']}")
    return 0


def cmd_analyst_role(args: argparse.Namespace) -> int:
    """Create or refresh the read-only PostgreSQL role for analysts."""
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.roles import ensure_analyst_role

    engine = engine_for(args.url) if args.url else engine_for(None)
    result = ensure_analyst_role(engine)
    _print(
        result,
        args.json,
        lambda d: f"只读角色 {d['role']}：可读 {len(d['granted'])} 个对象（marts、快照、参考表）",
    )
    return 0


def _render_catalog(data: dict[str, Any]) -> str:
    lines = [data["plan"]]
    action = None
    for m in data["measures"]:
        if m["action"] != action:
            action = m["action"]
            lines.append(f"\n{action}、{m['action_title']}")
        units = "、".join(m["responsible_units"])
        lines.append(f"（{m['number']}）{m['title']}  责任单位：{units}")
        for k in m["kpis"]:
            t = k["target"]
            goal = f"{t['comparator']} {t['value']} {k['unit']}" if t else k["kind"]
            source = k["source"] or "暂无数据来源"
            lines.append(f"    {k['id']:<32} {k['name']}  [{goal}]  ← {source}")
    return "\n".join(lines)


def cmd_catalog(args: argparse.Namespace) -> int:
    """The measure catalog: measures, KPIs, targets and their warehouse sources."""
    from consumption_monitor.indicators.catalog import load_catalog

    _print(load_catalog().to_dict(), args.json, _render_catalog)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.digest import demo_summary

    summary = demo_summary(engine_for(args.url) if args.url else engine_for(None), args.feed)
    _print(summary, args.json, lambda d: json.dumps(d, ensure_ascii=False, indent=2))
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    """Per-table digests of core and mart tables: equal digests mean equal contents."""
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.digest import warehouse_digest

    digests = warehouse_digest(
        engine_for(args.url) if args.url else engine_for(None),
        exclude_volatile=args.exclude_volatile,
    )
    _print(
        digests,
        args.json,
        lambda d: "\n".join(f"{v['sha256'][:16]}  {v['rows']:>7}  {k}" for k, v in d.items()),
    )
    return 0


def _locate(feed_name: str, rows: list[dict[str, Any]]) -> None:
    """Add each row's reasons in words and, for file feeds, where the row is in the
    unit's workbook."""
    from consumption_monitor.feeds.spec import load_feed
    from consumption_monitor.validation.ledger_messages import (
        describe_quarantined,
        quarantine_reasons,
    )

    feed = load_feed(feed_name)
    for row in rows:
        raw, failed = json.loads(row["raw_values"]), json.loads(row["failed_expectations"])
        row["reasons"] = quarantine_reasons(feed, row["stream"], raw, failed)
        if feed.source_kind == "file":
            row["location"] = f"{row['period']} " + describe_quarantined(
                feed, row["stream"], raw, failed
            )


def cmd_quarantine(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from consumption_monitor.warehouse import schema
    from consumption_monitor.warehouse.db import engine_for

    q = schema.audit_quarantine
    stmt = select(q).where(q.c.feed == args.feed).order_by(q.c.period, q.c.stream, q.c.row_number)
    if args.period:
        stmt = stmt.where(q.c.period == args.period)
    with (engine_for(args.url) if args.url else engine_for(None)).connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    _locate(args.feed, rows)
    _print(
        rows,
        args.json,
        lambda d: (
            "\n".join(
                r.get("location")
                or f"{r['period']} {r['stream']} 第{r['row_number']}行 "
                f"{'；'.join(r['reasons'])} {r['raw_values']}"
                for r in d
            )
            or "无隔离数据"
        ),
    )
    return 0


def cmd_tradein_audit(args: argparse.Namespace) -> int:
    """Quarantined trade-in transactions by enterprise: the cases an audit follows up."""
    from consumption_monitor.validation.tradein_audit import audit_cases, render_cases

    rows = audit_cases(
        args.url,
        period=args.period,
        year=args.year,
        enterprise=args.enterprise,
        detail=args.detail,
    )
    _print(rows, args.json, lambda d: render_cases(d, detail=args.detail))
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    from consumption_monitor.feeds.spec import list_feeds, load_feed

    data = []
    for name in list_feeds():
        spec = load_feed(name)
        data.append(
            {
                "name": name,
                "title": spec.title,
                "unit": spec.unit,
                "streams": [
                    {
                        "name": s.name,
                        "table": s.table,
                        "keys": list(s.keys),
                        "columns": s.column_names,
                    }
                    for s in spec.streams
                ],
            }
        )
    _print(
        data,
        args.json,
        lambda d: "\n".join(
            f"{f['name']}  {f['title']}  streams: {', '.join(s['name'] for s in f['streams'])}"
            for f in d
        ),
    )
    return 0


def cmd_ledger_templates(args: argparse.Namespace) -> int:
    from pathlib import Path

    from consumption_monitor.feeds.sources.workbook_templates import write_templates

    files = [str(p) for p in write_templates(Path(args.out))]
    _print(
        {"files": files},
        args.json,
        lambda d: "已生成台账模板：\n" + "\n".join(f"  {f}" for f in d["files"]),
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Per feed: last period loaded, batch state, validation, rows, lateness, open alerts."""
    from datetime import date

    from consumption_monitor.alerts.service import warehouse_engine
    from consumption_monitor.pipeline.status import operations_status, render

    today = date.fromisoformat(args.today) if args.today else None
    _print(operations_status(warehouse_engine(args.url), today), args.json, render)
    return 0


def cmd_partitions(args: argparse.Namespace) -> int:
    """The month partitions and the build tables dead loads left; ``--drop`` drops those."""
    from consumption_monitor.alerts.service import warehouse_engine
    from consumption_monitor.warehouse import partition_upkeep

    engine = warehouse_engine(args.url)
    dropped = partition_upkeep.drop_left_behind(engine) if args.drop else {}
    _print({**dropped, **partition_upkeep.overview(engine)}, args.json, partition_upkeep.render)
    return 0
