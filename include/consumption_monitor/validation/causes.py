"""Root causes of a failed validation, and the checks that failed only because of them.

A batch whose column ``value_ytd`` is missing fails the column's existence check, and every
other check on that column (or on a ``_`` column derived from it) fails too, most of them
with an exception inside Great Expectations. Operators need the cause once, not ten lines
of consequences with a library's error text. So, before the suites' results are shown:

- the batch is profiled per stream (:class:`StreamProfile`: rows, columns present, values
  that could not be typed), alike for a whole frame and for chunks;
- :func:`diagnose` finds the candidate causes in the profile and the spec (a declared
  column absent from every record, a stream without rows, a column whose every value is
  unreadable as its type) and attributes each failed check to one of them: its column is
  the cause's column, or a derived column computed from it (the derivations declare their
  inputs, :mod:`~consumption_monitor.validation.derivation_registry`), or it raised an
  exception inside GX (then, without a better cause, "the check could not run");
- a cause that explains no failed check is not reported (an empty stream whose suite
  allows it is fine).

The causes travel in the validation summary (``root_causes``, stored as the run's message
in ``audit_load_run``), which alerts, the validation report and the console read. The
exception texts stay in the task log and in ``audit_validation_result.exception``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consumption_monitor.feeds.frames import UNPARSEABLE
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.validation.derivation_registry import derived_inputs

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

    from consumption_monitor.validation.runner import Outcome

Check = tuple[str, int]  # (stream, expectation index)
TYPE_LABELS = {
    "decimal": "数值",
    "integer": "整数",
    "date": "日期",
    "boolean": "是/否",
    "string": "文本",
}
KIND_ORDER = ("empty_stream", "missing_column", "wrong_type", "check_error")
# The check that states a cause itself (it is the evidence, not a consequence)
EVIDENCE = {
    "empty_stream": "expect_table_row_count_to_be_between",
    "missing_column": "expect_column_to_exist",
    "wrong_type": "expect_column_values_to_be_in_type_list",
}


@dataclass(frozen=True)
class RootCause:
    """Why a batch's checks failed, said once: ``message`` is the operator's text."""

    kind: str  # empty_stream | missing_column | wrong_type | check_error
    column: str | None
    streams: tuple[str, ...]
    message: str
    evidence: tuple[Check, ...] = ()  # failed checks that state the cause
    consequences: tuple[Check, ...] = ()  # failed checks that could not run because of it

    def line(self) -> str:
        """The cause with the count of the checks folded under it."""
        n = len(self.consequences)
        return self.message + (f"；另有 {n} 项检查因此无法执行" if n else "")

    def explains(self) -> set[Check]:
        return {*self.evidence, *self.consequences}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "column": self.column,
            "streams": list(self.streams),
            "message": self.message,
            "evidence": [list(c) for c in self.evidence],
            "consequences": [list(c) for c in self.consequences],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RootCause:
        return cls(
            kind=str(data["kind"]),
            column=data.get("column"),
            streams=tuple(data.get("streams") or ()),
            message=str(data["message"]),
            evidence=tuple((str(s), int(i)) for s, i in data.get("evidence") or ()),
            consequences=tuple((str(s), int(i)) for s, i in data.get("consequences") or ()),
        )


@dataclass
class StreamProfile:
    """What the checks' results are diagnosed against: rows, columns, untypable values."""

    rows: int = 0
    present: set[str] = field(default_factory=set)
    unparseable: Counter[str] = field(default_factory=Counter)

    def observe(self, frame: pd.DataFrame) -> StreamProfile:
        self.rows += len(frame)
        self.present.update(str(c) for c in frame.columns)
        if UNPARSEABLE in frame.columns:
            for names in frame[UNPARSEABLE].dropna():
                self.unparseable.update(str(names).split(","))
        return self


def profile(frames: Mapping[str, pd.DataFrame]) -> dict[str, StreamProfile]:
    return {name: StreamProfile().observe(frame) for name, frame in frames.items()}


def causes_from_summary(summary: Mapping[str, Any] | None) -> list[RootCause]:
    """The root causes a validation summary carries (none for runs recorded before)."""
    return [RootCause.from_dict(c) for c in (summary or {}).get("root_causes") or ()]


def root_causes(conn: Connection, feed: str, period: str) -> list[RootCause]:
    """The root causes of the latest validation run of (feed, period), for the console."""
    import json

    from sqlalchemy import select

    from consumption_monitor.warehouse import schema

    runs = schema.audit_load_run
    message = conn.execute(
        select(runs.c.message)
        .where(runs.c.feed == feed, runs.c.period == period, runs.c.step == "validate")
        .order_by(runs.c.finished_at.desc())
        .limit(1)
    ).scalar()
    try:
        summary = json.loads(message or "{}")
    except ValueError:
        return []
    return causes_from_summary(summary) if isinstance(summary, dict) else []


def outcome_columns(outcome: Outcome, stream: StreamSpec) -> set[str]:
    """The columns a check reads: its column(s), and declared columns its row condition
    names."""
    kw = outcome.kwargs
    columns = {kw.get("column"), kw.get("column_A"), kw.get("column_B")}
    columns.update(kw.get("column_list") or ())
    condition = kw.get("row_condition")
    if isinstance(condition, str):
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", condition))
        columns.update(words & set(stream.column_names))
    return {c for c in columns if isinstance(c, str)}


def _sources(columns: Iterable[str], stream: str, derived: dict[str, set[str]]) -> set[Check]:
    """(stream, column) of the columns and, through the derivations, of their inputs."""
    out: set[tuple[str, str]] = set()
    todo = [(stream, c) for c in columns]
    while todo:
        ref = todo.pop()
        if ref in out:
            continue
        out.add(ref)
        for source in derived.get(ref[1], ()) if ref[0] == stream else ():
            todo.append(tuple(source.split(".", 1)) if "." in source else (stream, source))
    return out  # type: ignore[return-value]


def _candidates(feed: FeedSpec, profiles: Mapping[str, StreamProfile]) -> list[tuple]:
    found: list[tuple] = []
    for stream in feed.streams:
        prof = profiles.get(stream.name)
        if prof is None:
            continue
        if prof.rows == 0:
            found.append(("empty_stream", stream.name, None))
            continue
        for column in stream.columns:
            if column.name not in prof.present:
                found.append(("missing_column", stream.name, column.name))
            elif prof.unparseable[column.name] >= prof.rows:
                found.append(("wrong_type", stream.name, column.name))
    return found


def _attribute(
    outcome: Outcome, stream: StreamSpec, candidates: list[tuple], derived: dict[str, set[str]]
) -> tuple[tuple, bool] | None:
    """The candidate cause of one failed check, and whether the check states it."""
    refs = _sources(outcome_columns(outcome, stream), stream.name, derived)
    for kind, name, column in candidates:
        states = outcome.expectation_type == EVIDENCE[kind]
        if kind == "empty_stream" and name == outcome.stream:
            return (kind, name, column), states
        if (name, column) in refs:
            return (kind, name, column), states and outcome.column == column
    if outcome.column == UNPARSEABLE:  # rows held back only by a column unreadable throughout
        wrong = {c for k, s, c in candidates if k == "wrong_type" and s == outcome.stream}
        named = {n for v in outcome.sample for n in str(v).split(",")}
        if wrong and named <= wrong:
            return ("wrong_type", outcome.stream, min(wrong)), False
    if outcome.exception:
        return ("check_error", outcome.stream, None), False
    return None


def _message(kind: str, column: str | None, streams: Sequence[str], types: dict) -> str:
    where = "、".join(streams)
    if kind == "empty_stream":
        return f"数据流无数据：{where}"
    if kind == "missing_column":
        return f"字段缺失：{column}（{where}）"
    if kind == "wrong_type":
        label = TYPE_LABELS.get(types.get(column, ""), "声明的类型")
        return f"字段类型不符：{column}（{where}）的值全部无法识别为{label}"
    return f"部分检查无法执行（{where}）：校验程序出错，技术细节见任务日志"


def diagnose(
    feed: FeedSpec, profiles: Mapping[str, StreamProfile], outcomes: Sequence[Outcome]
) -> list[RootCause]:
    """The root causes of the failed checks; each cause lists the checks it explains."""
    candidates = _candidates(feed, profiles)
    streams = {s.name: s for s in feed.streams}
    derived = {s.name: derived_inputs(s.derive) for s in feed.streams}
    # (kind, column) -> stream -> ([evidence], [consequences])
    grouped: dict[tuple[str, str | None], dict[str, tuple[list, list]]] = {}
    for outcome in outcomes:
        stream = streams.get(outcome.stream)
        if outcome.success or stream is None:
            continue
        found = _attribute(outcome, stream, candidates, derived[stream.name])
        if found is None:
            continue
        (kind, name, column), states = found
        lists = grouped.setdefault((kind, column), {}).setdefault(name, ([], []))
        lists[0 if states else 1].append((outcome.stream, outcome.index))
    types = {c.name: c.type for s in feed.streams for c in s.columns}
    causes = [
        RootCause(
            kind=kind,
            column=column,
            streams=tuple(sorted(by_stream)),
            message=_message(kind, column, sorted(by_stream), types),
            evidence=tuple(sorted(c for ev, _ in by_stream.values() for c in ev)),
            consequences=tuple(sorted(c for _, co in by_stream.values() for c in co)),
        )
        for (kind, column), by_stream in grouped.items()
    ]
    return sorted(causes, key=lambda c: (KIND_ORDER.index(c.kind), c.column or "", c.streams))
