"""The operator console as one self-contained HTML page (Chinese, the shared stylesheet
inline, no script): rendered from ``console.console_data``'s dict, nothing else read.

Links to the other plugin pages and to Airflow's run pages are absolute paths on the API
server; they open in the whole window (``target="_top"``), not inside the UI's iframe.
"""

from __future__ import annotations

from html import escape
from typing import Any

from consumption_monitor.common.style import COLOURS, style_element
from consumption_monitor.pipeline.console import (
    LATE,
    MERGED,
    NO_DATA,
    NOT_DUE,
    PASSED,
    REJECTED,
    STATES,
    WARNING,
)

STATE_CLASSES = {
    PASSED: "ok",
    WARNING: "warn",
    REJECTED: "bad",
    LATE: "late",
    NOT_DUE: "pending",
    NO_DATA: "none",
    MERGED: "merged",
}
#: the short label a matrix cell shows (the legend and the cell's tooltip say it in full),
#: so that 13 periods fit the UI's iframe
SHORT_LABELS = {
    PASSED: "通过",
    WARNING: "有警告",
    REJECTED: "拒收",
    LATE: "逾期",
    NOT_DUE: "未到期",
    NO_DATA: "无数据",
    MERGED: "合并发布",
}
LEVELS = {"critical": "严重", "warning": "警告", "info": "提示"}
KINDS = {"failure": "校验未通过", "warning": "校验警告", "late": "逾期未入库"}


def _link(href: str | None, label: str, css: str = "") -> str:
    cls = f" class='{css}'" if css else ""
    if not href:
        return f"<span{cls}>{escape(label)}</span>"
    return f"<a{cls} href='{escape(href)}' target='_top'>{escape(label)}</a>"


def _chip(status: str, title: str = "") -> str:
    tip = f" title='{escape(title)}'" if title else ""
    colour = COLOURS.get(status, "#757575")
    return f"<span class='chip' style='background:{colour}'{tip}>{escape(status)}</span>"


def _matrix_cell(feed: str, cell: dict[str, Any]) -> str:
    state = cell["state"]
    tip = f"{feed} {cell['period']}：{state}" + (f"，应于 {cell['due']}" if cell["due"] else "")
    parts = [
        f"<td data-feed='{escape(feed)}' data-period='{cell['period']}' "
        f"data-state='{escape(state)}' title='{escape(tip)}'>",
        _link(cell["report"], SHORT_LABELS[state], f"chip {STATE_CLASSES[state]}"),
    ]
    links = []
    if cell["report"]:
        links.append(_link(cell["report"], "报告"))
    if cell["dag_run"]:
        links.append(_link(cell["dag_run"], "运行"))
    if links:
        parts.append(f"<span class='links'>{' · '.join(links)}</span>")
    if cell["quarantined"]:
        parts.append(f"<span class='q'>隔离 {cell['quarantined']} 行</span>")
    parts.append("</td>")
    return "".join(parts)


def _matrix(data: dict[str, Any]) -> str:
    head = "".join(f"<th>{escape(p)}</th>" for p in data["periods"])
    rows = "".join(
        f"<tr><td class='feed'>{escape(row['title'])}<br><span class='note'>"
        f"{escape(row['feed'])}</span></td>"
        + "".join(_matrix_cell(row["feed"], c) for c in row["cells"])
        + "</tr>"
        for row in data["matrix"]
    )
    legend = " ".join(f"<span class='chip {STATE_CLASSES[s]}'>{escape(s)}</span>" for s in STATES)
    return (
        f"<h2>数据源 × 统计期（近 {len(data['periods'])} 期）</h2>"
        f"<p class='legend'>{legend}</p><div class='matrix'><table id='matrix'>"
        f"<thead><tr><th class='feed'>数据源</th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
        "<p class='note'>逾期：过了应入库日仍未入库（逾期告警的观察窗口内）；"
        "更早未入库的期别记为无数据。"
        "点击状态打开该期的校验报告，“运行”打开 Airflow 的 DAG 运行。</p>"
    )


def _warnings(data: dict[str, Any]) -> str:
    """The lines `cm status` shows as 【提醒】 (issue 15), above everything else."""
    if not data.get("warnings"):
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in data["warnings"])
    return f"<ul id='warnings' class='note'>{items}</ul>"


def _alerts(data: dict[str, Any]) -> str:
    if not data["alerts"]:
        return "<h2>未解除告警</h2><p>无</p>"
    rows = "".join(
        f"<tr><td>{escape(a['title_feed'])}</td><td>{escape(a['period'])}</td>"
        f"<td>{escape(KINDS.get(a['kind'], a['kind']))}</td>"
        f"<td>{escape(LEVELS.get(a['level'], a['level']))}</td><td>{escape(a['title'])}</td>"
        f"<td>{escape((a['since'] or '—')[:16].replace('T', ' '))}</td></tr>"
        for a in data["alerts"]
    )
    return (
        f"<h2>未解除告警（{len(data['alerts'])}）</h2><table id='alerts'><thead><tr>"
        "<th>数据源</th><th>统计期</th><th>类型</th><th>级别</th><th>标题</th><th>首次发送</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _quarantine(data: dict[str, Any]) -> str:
    if not data["quarantine"]:
        return "<h2>隔离行</h2><p>近 13 期的当前批次无隔离行</p>"
    rows = "".join(
        f"<tr><td>{escape(q['title'])}</td><td>{escape(q['period'])}</td>"
        f"<td class='num'>{q['rows']}</td></tr>"
        for q in data["quarantine"]
    )
    return (
        "<h2>隔离行（当前批次）</h2><table id='quarantine'><thead><tr><th>数据源</th>"
        f"<th>统计期</th><th>隔离行数</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _measures(data: dict[str, Any]) -> str:
    m = data["measures"]
    if m["period"] is None:
        return "<h2>19 项措施</h2><p>暂无快照：先运行 cm snapshot 或快照 DAG</p>"
    rows = "".join(
        f"<tr data-measure='{x['number']}'><td>（{x['number']}）{escape(x['title'])}</td><td>"
        + " ".join(_chip(k["status"], k["name"]) for k in x["kpis"])
        + "</td></tr>"
        for x in m["measures"]
    )
    return (
        f"<h2>19 项措施（{escape(m['period'])}）</h2><p class='note'>"
        f"{_link(m['report'], '打开 ' + m['period'] + ' 监测月报')}；"
        "每个色块为一个指标的状态，悬停可见指标名称。</p>"
        f"<table id='measures'><thead><tr><th>措施</th><th>指标状态</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _calendar(data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(c['title'])}</td><td>{escape(c['period'])}</td>"
        f"<td>{escape(c['due'])}</td><td>{str(c['late']) + ' 期' if c['late'] else '—'}</td></tr>"
        for c in data["calendar"]
    )
    return (
        "<h2>发布日历</h2><table id='calendar'><thead><tr><th>数据源</th><th>下一期</th>"
        f"<th>应入库日</th><th>逾期未入库</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def render_console(data: dict[str, Any]) -> str:
    """The console page (HTML) of ``console_data``'s dict."""
    return "\n".join(
        [
            "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>监测总览 · {escape(data['as_of'])}</title>",
            style_element(),
            "</head><body>",
            f"<h1>监测总览</h1><p class='meta'>截至 {escape(data['as_of'])}（局时区）</p>",
            _warnings(data),
            _matrix(data),
            _alerts(data),
            _calendar(data),
            _quarantine(data),
            _measures(data),
            "</body></html>",
        ]
    )
