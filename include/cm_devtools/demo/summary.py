"""The text shown when the demo ends: runs, warehouse content, the latest snapshot, failures."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cm_devtools.demo.airflow_home import ADMIN_USER
from cm_devtools.demo.common import CATCHUP_DAG_ID, DAG_ID, SNAPSHOT_DAG_ID
from cm_devtools.demo.console import format_duration
from cm_devtools.demo.runs import RunTally
from consumption_monitor.common.terminal import pad

VERDICT_LABELS = {"passed": "通过", "warning": "警告", "rejected": "拒收", "unknown": "未知"}
KNOWN_SUMMARY_KEYS = {
    "feed",
    "periods_loaded",
    "first_period",
    "last_period",
    "rows_loaded",
    "rows_quarantined",
    "verdicts",
    "revised_periods",
    "rejected_batches",
    "latest_snapshot",
}


def _fmt_number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _short_list(items: list[Any], limit: int = 12) -> str:
    if not items:
        return "无"
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" …(共 {len(items)} 项)" if len(items) > limit else "")


def render_warehouse_summary(summary: Mapping[str, Any], *, snapshot: bool = True) -> list[str]:
    """Lines for ``consumption_monitor.warehouse.digest.demo_summary``'s dict (unknown keys as is).

    The latest snapshot covers all indicators whatever the feed: ``snapshot=False`` leaves
    it out (shown once after several feeds).
    """
    lines = []
    span = ""
    if summary.get("first_period"):
        span = f" ({summary['first_period']} … {summary.get('last_period')})"
    lines.append(f"已入库期数 Periods loaded: {summary.get('periods_loaded', '—')}{span}")
    lines.append(
        f"入库行数 Rows loaded: {summary.get('rows_loaded', '—')}"
        f" · 隔离 Quarantined: {summary.get('rows_quarantined', '—')}"
    )
    verdicts = summary.get("verdicts") or {}
    if isinstance(verdicts, Mapping) and verdicts:
        shown = " · ".join(f"{VERDICT_LABELS.get(k, k)} {k} {v}" for k, v in verdicts.items())
    else:
        shown = "无"
    lines.append(f"校验结果 Validation: {shown}")
    lines.append(
        f"修订期别 Revised periods: {_short_list(list(summary.get('revised_periods') or []))}"
    )
    rejected = [
        f"{b.get('period')}#{b.get('batch_id')}" if isinstance(b, Mapping) else str(b)
        for b in summary.get("rejected_batches") or []
    ]
    lines.append(f"拒收批次 Rejected batches: {_short_list(rejected)}")
    if snapshot:
        lines.extend(render_snapshot(list(summary.get("latest_snapshot") or [])))
    for key, value in summary.items():
        if key not in KNOWN_SUMMARY_KEYS:
            lines.append(f"{key}: {value}")
    return lines


def render_snapshot(rows: list[Mapping[str, Any]]) -> list[str]:
    """The latest KPI snapshot as a small table (same columns as `cm snapshot`)."""
    if not rows:
        return ["最新快照 Latest snapshot: 无"]
    first = rows[0]
    lines = [f"最新快照 Latest snapshot: {first.get('period')} (单位 {first.get('unit', '—')})"]
    widths = (24, 14, 16, 11, 11)
    header = ("指标", "当月", "累计", "当月同比%", "累计同比%")
    lines.append(
        "  "
        + pad(header[0], widths[0])
        + "".join(pad(h, w, right=True) for h, w in zip(header[1:], widths[1:], strict=True))
        + "  校验"
    )
    for row in rows:
        cells = (
            _fmt_number(row.get("actual_month")),
            _fmt_number(row.get("actual_ytd")),
            _fmt_number(row.get("yoy_month_pct")),
            _fmt_number(row.get("yoy_ytd_pct")),
        )
        name = str(row.get("name") or row.get("kpi_id") or "")
        lines.append(
            "  "
            + pad(name, widths[0])
            + "".join(pad(c, w, right=True) for c, w in zip(cells, widths[1:], strict=True))
            + f"  {row.get('validation_state') or '—'}"
        )
    return lines


def render_summary(
    summaries: Mapping[str, Mapping[str, Any] | None],
    *,
    tallies: Mapping[str, RunTally],
    ui_url: str,
    password: str,
    password_file: Path,
    logs_dir: Path,
    elapsed_s: float,
    catchup: Mapping[str, Any] | None = None,
    report: Mapping[str, Any] | None = None,
) -> str:
    """The text shown when the demo ends: the catch-up run, then per feed (``summaries``
    maps feed = DAG id to ``demo_summary``'s dict, None when unavailable) its runs and
    warehouse content; then how to browse."""
    lines = ["", "===== 演示结果 Demo summary ====="]
    if catchup:
        first, last = catchup.get("range") or ("?", "?")
        feeds_state = catchup.get("feeds") or {}
        ok = sum(1 for state in feeds_state.values() if state == "success")
        lines.append(
            f"历史补数 Catch-up {first} … {last} ({CATCHUP_DAG_ID}): {catchup.get('state')}"
            f" · 数据源成功 {ok}/{len(feeds_state)}"
        )
        if catchup.get("ui"):
            lines.append(f"  界面 UI: {catchup['ui']}")
    feeds = list(dict.fromkeys([*summaries, *tallies]))
    if len(feeds) > 1:
        runs = [t for t in tallies.values()]
        expected = sum(len(t.expected) for t in runs)
        lines.append(
            f"全部数据源 All feeds ({len(feeds)}): 成功 {sum(t.count('success') for t in runs)}"
            f" · 失败 {sum(t.count('failed') for t in runs)}"
            f" · 未完成 {expected - sum(t.finished for t in runs)} (共 {expected} 次运行)"
        )
    for feed in feeds:
        lines.append(f"--- {feed} ---")
        tally = tallies.get(feed)
        if tally is not None:
            lines.append(
                f"Airflow 运行 Runs: 成功 {tally.count('success')} · 失败 {tally.count('failed')}"
                f" · 未完成 {len(tally.expected) - tally.finished} (共 {len(tally.expected)} 期)"
            )
        summary = summaries.get(feed)
        if summary is None:
            lines.append("仓库摘要 Warehouse summary: 不可用")
        else:
            lines.extend(render_warehouse_summary(summary, snapshot=len(feeds) == 1))
    if len(feeds) > 1:  # the same for every feed: once, from any feed's summary
        rows = next(
            (s["latest_snapshot"] for s in summaries.values() if s and s.get("latest_snapshot")), []
        )
        lines.append("--- 全部指标 All indicators ---")
        lines.extend(render_snapshot(list(rows)))
    if report:
        lines.append(
            f"月报 Monthly report {report.get('period')} ({SNAPSHOT_DAG_ID}): {report.get('state')}"
        )
        if report.get("state") == "success":
            lines.append(f"  {report.get('html')} · 界面 {report.get('ui')}")
    lines += [
        f"Airflow 界面 UI: {ui_url}",
        f"登录 Login: 用户名 {ADMIN_USER} · 密码 {password}  (保存在 {password_file})",
        f"进程日志 Logs: {logs_dir}",
        f"用时 Elapsed: {format_duration(elapsed_s)}",
        "Airflow 与样例数据服务仍在后台运行；停止请执行 `make stop`。",
    ]
    return "\n".join(lines)


def render_failures(failures: list[dict[str, Any]], ui_url: str) -> str:
    lines = ["未成功的期别 Unsuccessful runs:"]
    for item in failures:
        dag_id = item.get("dag_id") or DAG_ID
        lines.append(f"  {dag_id} {item['period']}: {item['state']}")
        if item.get("run_id"):
            lines.append(f"    界面 UI: {ui_url}/dags/{dag_id}/runs/{item['run_id']}")
        for task in item["tasks"]:
            log = f" · 日志 {task['log']}" if task.get("log") else ""
            lines.append(f"    {task['task_id']}: {task['state']}{log}")
    return "\n".join(lines)
