"""Human-readable validation reports: one HTML page per validation run.

The page is rendered from the audit tables (every expectation of the run, the quarantined
rows with their raw values), written under ``<CM_DATA_DIR>/reports/validation/<feed>/
<period>/<run_id>.html`` when the run is recorded, listed by the Airflow UI plugin
(``plugins/cm_validation_reports.py``) and linked from alerts. Our own page rather than GX
Data Docs: the suites run on an ephemeral context, and the page also shows the quarantine and the
severity policy's verdict, which Data Docs do not know.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consumption_monitor.common import config
from consumption_monitor.common.style import style_element

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

# Light at import: the Airflow UI plugin imports this module for the paths and the index;
# the warehouse and the validation runner are imported where a page is rendered.

URL_PREFIX = "/cm-validation"
QUARANTINE_SHOWN = 200
VERDICT_LABELS = {"passed": "通过", "warning": "有警告（已入库）", "rejected": "未通过（已拒收）"}


def reports_dir() -> Path:
    return config.data_dir() / "reports" / "validation"


def report_path(feed: str, period: str, run_id: str, root: Path | None = None) -> Path:
    return (root or reports_dir()) / feed / period / f"{run_id}.html"


def report_url(feed: str, period: str, run_id: str) -> str:
    """Where operators open the report: ``CM_REPORTS_BASE_URL``, else the Airflow API
    server's plugin route when Airflow is set up, else the file itself."""
    base = os.environ.get("CM_REPORTS_BASE_URL")
    if not base and "AIRFLOW_HOME" in os.environ:
        try:
            from airflow.configuration import conf

            base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
            base += URL_PREFIX
        except Exception:
            base = None
    if base:
        return f"{base.rstrip('/')}/validation/{feed}/{period}/{run_id}.html"
    return report_path(feed, period, run_id).as_uri()


def _run(conn: Connection, run_id: str) -> dict[str, Any]:
    from sqlalchemy import select

    from consumption_monitor.warehouse import schema

    runs = schema.audit_load_run
    row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
    if row is None:
        raise KeyError(f"no validation run {run_id}")
    return dict(row)


def render_validation_report(conn: Connection, run_id: str) -> str:
    """The HTML page of one validation run."""
    from sqlalchemy import select

    from consumption_monitor.feeds.spec import load_feed
    from consumption_monitor.warehouse import schema

    esc = html.escape
    run = _run(conn, run_id)
    spec = load_feed(run["feed"])
    v = schema.audit_validation_result
    results = list(
        conn.execute(
            select(v).where(v.c.run_id == run_id).order_by(v.c.stream, v.c.expectation_index)
        ).mappings()
    )
    q = schema.audit_quarantine
    held = list(
        conn.execute(
            select(q)
            .where(q.c.batch_id == run["batch_id"])
            .order_by(q.c.stream, q.c.row_number)
            .limit(QUARANTINE_SHOWN)
        ).mappings()
    )
    verdict = VERDICT_LABELS.get(run["outcome"], run["outcome"])
    title = f"{spec.title} {run['period']} 校验报告"
    out = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title>",
        style_element(),  # the platform's shared stylesheet (common/style.py)
        "</head><body>",
        f"<h1>{esc(title)}</h1>",
        "<table>",
        f"<tr><th>数据源</th><td>{esc(spec.title)}（{esc(spec.name)}）</td></tr>",
        f"<tr><th>统计期</th><td>{esc(run['period'])}</td></tr>",
        f"<tr><th>批次</th><td>{esc(run['batch_id'] or '')}</td></tr>",
        f"<tr><th>结论</th><td>{esc(verdict)}</td></tr>",
        f"<tr><th>校验时间</th><td>{esc(str(run['finished_at']))}</td></tr>",
        f"<tr><th>DAG 运行</th><td>{esc(str(run['dag_id'] or '—'))} / "
        f"{esc(str(run['dag_run_id'] or '—'))} / {esc(str(run['task_id'] or '—'))}</td></tr>",
        "</table>",
    ]
    out += [f"<p class='note'>注：{esc(note)}</p>" for note in rule_notes(spec, run["period"])]
    out += _results_sections(results, _causes(run["message"]))
    out += _review_section(conn, run["batch_id"])
    out.append(f"<h2>隔离行（{len(held)}{'+' if len(held) == QUARANTINE_SHOWN else ''}）</h2>")
    if held:
        out.append(
            "<table><tr><th>数据流</th><th>行号</th><th>未通过的校验</th><th>原始值</th></tr>"
        )
        out += [
            f"<tr><td>{esc(h['stream'])}</td><td>{h['row_number']}</td>"
            f"<td>{esc(h['failed_expectations'])}</td><td>{esc(h['raw_values'])}</td></tr>"
            for h in held
        ]
        out.append("</table>")
    else:
        out.append("<p>无</p>")
    out.append("</body></html>")
    return "\n".join(out)


def rule_notes(spec: Any, period: str) -> list[str]:
    """Lines saying the rules a stream is checked against are not all verified: a stream
    deriving ``tradein_rules`` reads the policy year's rules file, whose ``unverified:``
    list is shown (issue 15: rule files marked unverified are flagged in every report)."""
    from consumption_monitor.common.tradein_rules import unverified_note

    uses_rules = any(d.name == "tradein_rules" for s in spec.streams for d in s.derive)
    note = unverified_note(int(period[:4])) if uses_rules else None
    return [note] if note else []


def _review_section(conn: Connection, batch_id: str | None) -> list[str]:
    """The batch's review items (核实): every warning with its owner, state, explanation."""
    from consumption_monitor.validation.review import STATUS_LABELS, items_of_batch

    items = items_of_batch(conn, batch_id) if batch_id else []
    if not items:
        return []
    esc = html.escape
    out = [
        f"<h2>核实项（{len(items)}）</h2><table><tr><th>数据流</th><th>状态</th>"
        "<th>责任单位</th><th>警告</th><th>说明</th><th>处理</th></tr>"
    ]
    for i in items:
        said = f"{i['explanation']}（{i['explained_by']}）" if i["explanation"] else "—"
        done = f"{i['decided_by']}：{i['decision_note'] or ''}" if i["decided_by"] else "—"
        out.append(
            f"<tr><td>{esc(i['stream'])}</td><td>{esc(STATUS_LABELS[i['status']])}</td>"
            f"<td>{esc(i['owner'])}</td><td>{esc(i['message'])}</td><td>{esc(said)}</td>"
            f"<td>{esc(done)}</td></tr>"
        )
    out.append("</table>")
    return out


RESULT_HEAD = (
    "<table><tr><th>数据流</th><th>校验</th><th>级别</th><th>说明</th>"
    "<th>结果</th><th>不符/总数</th><th>样例</th></tr>"
)
UNRUN = "无法执行（技术细节见任务日志）"  # a library's exception text is never shown


def _causes(message: str | None) -> list[Any]:
    from consumption_monitor.validation.causes import causes_from_summary

    try:
        summary = json.loads(message or "{}")
    except ValueError:
        return []
    return causes_from_summary(summary) if isinstance(summary, dict) else []


def _result_row(r: Any, result: str | None = None) -> str:
    from consumption_monitor.validation.runner import expectation_label

    esc = html.escape
    css = "" if r["success"] else ("fail" if r["severity"] == "critical" else "warn")
    label = expectation_label(r["expectation_type"], r["column_name"])
    sample = ", ".join(json.dumps(s, ensure_ascii=False) for s in json.loads(r["sample"] or "[]"))
    counts = f"{r['unexpected_count'] if r['unexpected_count'] is not None else '—'}"
    counts += f"/{r['element_count']}" if r["element_count"] is not None else ""
    if result is None:
        result = "通过" if r["success"] else (UNRUN if r["exception"] else "未通过")
    return (
        f"<tr class='{css}'><td>{esc(r['stream'])}</td><td>{esc(label)}</td>"
        f"<td>{esc(r['severity'])}</td><td>{esc(r['description'] or '')}</td>"
        f"<td>{esc(result)}</td><td>{esc(counts)}</td><td>{esc(sample)}</td></tr>"
    )


def _results_sections(results: list[Any], causes: list[Any]) -> list[str]:
    """The root causes first, then the failures they do not explain, then the checks that
    could not run because of a cause (folded, each naming it), then the checks passed."""
    esc = html.escape
    key = {id(r): (r["stream"], r["expectation_index"]) for r in results}
    by_check = {c: cause for cause in causes for c in cause.explains()}
    unchecked = [r for r in results if not r["success"] and r["severity"] == "info"]
    results = [r for r in results if r["success"] or r["severity"] != "info"]
    failed = [r for r in results if not r["success"] and key[id(r)] not in by_check]
    folded = [r for r in results if not r["success"] and key[id(r)] in by_check]
    passed = [r for r in results if r["success"]]
    out: list[str] = []
    if causes:
        out.append("<h2>根本原因</h2><ol>")
        out += [f"<li>{esc(cause.line())}</li>" for cause in causes]
        out.append("</ol>")
    out.append(f"<h2>未通过的校验（{len(failed)}）</h2>")
    none = "<p>除上述根本原因外无</p>" if causes else "<p>无</p>"
    out += [RESULT_HEAD, *(_result_row(r) for r in failed), "</table>"] if failed else [none]
    if folded:
        out.append(f"<h2>根本原因涉及的校验（{len(folded)}）</h2>{RESULT_HEAD}")
        for r in folded:
            cause = by_check[key[id(r)]]
            said = "未通过（即根本原因）" if key[id(r)] in cause.evidence else "因此无法执行"
            out.append(_result_row(r, f"{said}：{cause.message}"))
        out.append("</table>")
    if unchecked:  # plausibility rules: entities without history are not passed
        out.append(f"<h2>未检查：无历史数据（{len(unchecked)}）</h2>{RESULT_HEAD}")
        out += [_result_row(r, "无历史数据，未检查") for r in unchecked]
        out.append("</table>")
    out.append(f"<h2>通过的校验（{len(passed)}）</h2>")
    out += [RESULT_HEAD, *(_result_row(r) for r in passed), "</table>"] if passed else ["<p>无</p>"]
    return out


def write_validation_report(engine: Engine, run_id: str, root: Path | None = None) -> Path:
    with engine.connect() as conn:
        run = _run(conn, run_id)
        page = render_validation_report(conn, run_id)
    path = report_path(run["feed"], run["period"], run_id, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def list_reports(root: Path | None = None) -> list[dict[str, Any]]:
    """Every report on disk, newest first (for the UI plugin's index)."""
    base = root or reports_dir()
    found = []
    for path in base.glob("*/*/*.html"):
        feed, period = path.parent.parent.name, path.parent.name
        found.append(
            {
                "feed": feed,
                "period": period,
                "run_id": path.stem,
                "path": f"validation/{feed}/{period}/{path.name}",
                "mtime": path.stat().st_mtime,
            }
        )
    return sorted(found, key=lambda r: r["mtime"], reverse=True)
