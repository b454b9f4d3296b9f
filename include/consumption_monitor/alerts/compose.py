"""Build alerts from what the warehouse recorded about a run.

Everything an alert says about a validation comes from the audit tables (the run's
``audit_validation_result`` rows, ``audit_quarantine``, ``audit_load_batch``), so an alert
sent from an Airflow callback, one previewed with ``cm alerts preview`` and the validation
report agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from consumption_monitor.alerts.measures import MeasureRef
from consumption_monitor.alerts.message import Alert, Link, Section
from consumption_monitor.common.runs import RunContext
from consumption_monitor.feeds.spec import FeedSpec
from consumption_monitor.validation.causes import RootCause, causes_from_summary
from consumption_monitor.validation.review import describe, items_of_batch
from consumption_monitor.validation.runner import expectation_label
from consumption_monitor.warehouse import schema

SEVERITY_LABELS = {"critical": "关键", "warning": "警告"}
SAMPLES_SHOWN = 3
PROBLEMS_SHOWN = 12


@dataclass(frozen=True)
class Problem:
    """An expectation that failed, or that held rows back in quarantine within its allowance."""

    stream: str
    label: str
    severity: str
    description: str
    success: bool
    unexpected_count: int | None
    element_count: int | None
    sample: tuple[Any, ...]
    exception: str | None = None  # the library's text: kept for the log, never shown
    index: int = -1

    def line(self) -> str:
        what = f"{self.description}（{self.label}）" if self.description else self.label
        if self.unexpected_count is None:  # a table-level check, or one that could not run
            result = "无法执行（技术细节见任务日志）" if self.exception else "未通过"
        else:
            total = f"/{self.element_count}" if self.element_count is not None else ""
            shown = "、".join(_short(v) for v in self.sample[:SAMPLES_SHOWN])
            result = f"不符 {self.unexpected_count}{total} 行"
            result += f"，样例 {shown}" if shown else ""
        tolerated = "（在容忍范围内，相关行已隔离）" if self.success else ""
        severity = SEVERITY_LABELS.get(self.severity, self.severity)
        return f"【{severity}】{self.stream} · {what}：{result}{tolerated}"


@dataclass(frozen=True)
class ValidationFacts:
    """One validation run of a batch, as recorded."""

    run_id: str
    batch_id: str
    verdict: str
    rows_received: int | None
    rows_quarantined: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    current_batch: str | None = None  # the period's loaded version, when there is one
    causes: tuple[RootCause, ...] = ()  # why checks failed; their consequences are folded
    review: tuple[str, ...] = ()  # the batch's review items (核实) still to explain or decide

    @property
    def listed(self) -> tuple[Problem, ...]:
        """The problems no root cause explains: each is said on its own line."""
        explained = {c for cause in self.causes for c in cause.explains()}
        return tuple(p for p in self.problems if (p.stream, p.index) not in explained)

    @property
    def signature(self) -> str:
        keys = sorted(f"{p.severity}:{p.stream}:{p.label}" for p in self.listed)
        keys += sorted(f"cause:{c.kind}:{c.column}:{','.join(c.streams)}" for c in self.causes)
        return _digest([self.verdict, *keys])


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def validation_facts(
    conn: Connection, feed: str, period: str, *, dag_run_id: str | None = None
) -> ValidationFacts | None:
    """The latest validation run of (feed, period), within one DAG run when given."""
    runs = schema.audit_load_run
    stmt = (
        select(runs.c.run_id, runs.c.batch_id, runs.c.outcome, runs.c.message)
        .where(runs.c.feed == feed, runs.c.period == period, runs.c.step == "validate")
        .order_by(runs.c.finished_at.desc())
        .limit(1)
    )
    if dag_run_id:
        stmt = stmt.where(runs.c.dag_run_id == dag_run_id)
    run = conn.execute(stmt).first()
    if run is None:
        return None
    v = schema.audit_validation_result
    rows = conn.execute(
        select(v)
        .where(v.c.run_id == run.run_id)
        .where(
            (v.c.success.is_(False) & (v.c.severity != "info"))
            | ((v.c.severity == "critical") & (v.c.unexpected_count > 0))
        )
        .order_by(v.c.stream, v.c.expectation_index)
    ).mappings()
    problems = tuple(
        Problem(
            stream=r["stream"],
            label=expectation_label(r["expectation_type"], r["column_name"]),
            severity=r["severity"],
            description=r["description"] or "",
            success=bool(r["success"]),
            unexpected_count=r["unexpected_count"],
            element_count=r["element_count"],
            sample=tuple(json.loads(r["sample"] or "[]")),
            exception=r["exception"],
            index=r["expectation_index"],
        )
        for r in rows
    )
    q = schema.audit_quarantine
    held = conn.execute(
        select(func.count()).select_from(q).where(q.c.batch_id == run.batch_id)
    ).scalar_one()
    b = schema.audit_load_batch
    received = conn.execute(select(b.c.rows_received).where(b.c.batch_id == run.batch_id)).scalar()
    current = conn.execute(
        select(b.c.batch_id).where(b.c.feed == feed, b.c.period == period, b.c.is_current)
    ).scalar()
    causes = tuple(causes_from_summary(_summary(run.message)))
    review = tuple(
        describe(i)
        for i in items_of_batch(conn, run.batch_id)
        if i["status"] in ("open", "explained")
    )
    return ValidationFacts(
        run.run_id, run.batch_id, run.outcome, received, held, problems, current, causes, review
    )


def _summary(message: str | None) -> dict[str, Any]:
    """The validation summary stored as the run's message (older runs: maybe not JSON)."""
    try:
        data = json.loads(message or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _run_facts(run: RunContext) -> list[tuple[str, str]]:
    facts = []
    if run.dag_id:
        facts.append(("DAG 运行", f"{run.dag_id} / {run.dag_run_id}"))
    if run.task_id:
        attempt = f"（第 {run.try_number} 次尝试）" if run.try_number else ""
        facts.append(("任务", f"{run.task_id}{attempt}"))
    return facts


def _measures(measures: list[MeasureRef]) -> tuple[Section, ...]:
    if not measures:
        return ()
    return (Section("涉及措施及责任单位", tuple(m.line() for m in measures)),)


def _links(run: RunContext, report_url: str | None) -> tuple[Link, ...]:
    links = []
    if run.log_url:
        links.append(Link("任务日志", run.log_url))
    if report_url:
        links.append(Link("校验报告", report_url))
    return tuple(links)


def _feed_fact(spec: FeedSpec) -> tuple[str, str]:
    return ("数据源", f"{spec.title}（{spec.name}）")


def validation_alert(
    spec: FeedSpec,
    period: str,
    facts: ValidationFacts,
    measures: list[MeasureRef],
    *,
    run: RunContext | None = None,
    report_url: str | None = None,
) -> Alert | None:
    """A rejected batch (critical) or a batch loaded with warnings or quarantine (warning);
    None when the run found nothing to say."""
    run = run or RunContext()
    rejected = facts.verdict == "rejected"
    if not rejected and not facts.problems and not facts.rows_quarantined:
        return None
    listed = facts.listed
    shown = listed[:PROBLEMS_SHOWN]
    lines = tuple(p.line() for p in shown)
    if len(listed) > len(shown):
        lines += (f"……另有 {len(listed) - len(shown)} 项，见校验报告",)
    sections = (Section("根本原因", tuple(c.line() for c in facts.causes)),) if facts.causes else ()
    if lines or not sections:
        sections += (Section("未通过的校验", lines),)
    if facts.review:
        shown_items = facts.review[:PROBLEMS_SHOWN]
        more = len(facts.review) - len(shown_items)
        extra = (f"……另有 {more} 项，cm review list",) if more else ()
        sections += (Section("待核实（请责任单位说明）", (*shown_items, *extra)),)
    if not rejected:
        outcome = "已入库，但存在校验警告或隔离行，请核实"
    elif facts.current_batch:
        outcome = f"校验未通过，批次已拒收；本期仍为此前入库的版本（批次 {facts.current_batch}）"
    else:
        outcome = "校验未通过，批次已拒收，本期数据未入库"
    received = "?" if facts.rows_received is None else str(facts.rows_received)
    return Alert(
        kind="failure" if rejected else "warning",
        level="critical" if rejected else "warning",
        feed=spec.name,
        period=period,
        signature=facts.signature,
        title=f"{spec.title} {period} {'数据校验未通过' if rejected else '数据校验有警告'}",
        facts=(
            _feed_fact(spec),
            ("统计期", period),
            ("结论", outcome),
            *_run_facts(run),
            ("批次", f"{facts.batch_id}（收到 {received} 行）"),
            ("隔离行数", str(facts.rows_quarantined)),
        ),
        sections=(*sections, *_measures(measures)),
        links=_links(run, report_url),
        batch_id=facts.batch_id,
        dag_id=run.dag_id,
        dag_run_id=run.dag_run_id,
        task_id=run.task_id,
    )


_VOLATILE = re.compile(r"[0-9a-f]{8,}|\d+(\.\d+)?")


def error_alert(
    spec: FeedSpec,
    period: str,
    error: BaseException | str,
    measures: list[MeasureRef],
    *,
    run: RunContext | None = None,
) -> Alert:
    """A task that failed for good for another reason than validation (feed down, bad
    credentials, a database error). The signature ignores numbers and ids in the message,
    so the same failure on another run or page deduplicates."""
    run = run or RunContext()
    kind = type(error).__name__ if isinstance(error, BaseException) else "Error"
    message = str(error).strip() or kind
    first = message.splitlines()[0][:300]
    return Alert(
        kind="failure",
        level="critical",
        feed=spec.name,
        period=period,
        signature=_digest([run.task_id or "", kind, _VOLATILE.sub("#", first)]),
        title=f"{spec.title} {period} 任务失败",
        facts=(
            _feed_fact(spec),
            ("统计期", period),
            ("结论", "任务重试后仍失败，本期数据未入库"),
            *_run_facts(run),
            ("错误", f"{kind}: {first}"),
        ),
        sections=_measures(measures),
        links=_links(run, None),
        dag_id=run.dag_id,
        dag_run_id=run.dag_run_id,
        task_id=run.task_id,
    )


LATE_SIGNATURE = "late"


def late_alert(
    spec: FeedSpec, period: str, due: date, today: date, measures: list[MeasureRef]
) -> Alert:
    """A period not loaded by its due date."""
    return Alert(
        kind="late",
        level="warning",
        feed=spec.name,
        period=period,
        signature=LATE_SIGNATURE,
        title=f"{spec.title} {period} 数据逾期未入库",
        facts=(
            _feed_fact(spec),
            ("统计期", period),
            ("应到日期", due.isoformat()),
            ("已逾期", f"{(today - due).days} 天"),
            ("结论", "截至检查时本期数据尚未成功入库，请联系报送单位"),
        ),
        sections=_measures(measures),
    )


RESOLVED_KINDS = {"failure": "校验未通过/任务失败", "warning": "校验警告", "late": "逾期未入库"}


def recovery_alert(
    spec: FeedSpec,
    period: str,
    resolved: list[dict[str, Any]],
    *,
    facts: ValidationFacts | None = None,
    run: RunContext | None = None,
    report_url: str | None = None,
) -> Alert:
    """The feed loaded the period again after alerts: says which alerts it closes."""
    run = run or RunContext()
    lines = tuple(
        f"{RESOLVED_KINDS.get(r['kind'], r['kind'])}：{r['title']}（{_when(r['sent_at'])} 发出）"
        for r in resolved
    )
    loaded = []
    if facts is not None:
        loaded = [
            ("批次", f"{facts.batch_id}（收到 {facts.rows_received} 行）"),
            ("校验结论", facts.verdict),
        ]
    return Alert(
        kind="recovery",
        level="info",
        feed=spec.name,
        period=period,
        signature=_digest(["recovery", *sorted(r["alert_id"] for r in resolved)]),
        title=f"{spec.title} {period} 已恢复入库",
        facts=(_feed_fact(spec), ("统计期", period), *_run_facts(run), *loaded),
        sections=(Section("已解除的告警", lines),),
        links=_links(run, report_url),
        batch_id=facts.batch_id if facts else None,
        dag_id=run.dag_id,
        dag_run_id=run.dag_run_id,
        task_id=run.task_id,
    )


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)
