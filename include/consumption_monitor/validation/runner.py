"""Run a feed's suites on a batch and decide what happens to it.

Severity policy, one rule for every feed:
- a ``critical`` expectation that fails (after its ``mostly`` allowance) rejects the batch:
  nothing of it loads;
- rows that fail a ``critical`` row-level expectation are quarantined with the failed
  expectations and their raw values, whether or not the batch loads;
- a ``warning`` that fails is recorded and the batch loads.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from consumption_monitor.feeds.frames import ROW
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.validation import derivations, tradein
from consumption_monitor.validation.causes import RootCause, diagnose, profile
from consumption_monitor.validation.derivation_registry import DeriveContext, apply
from consumption_monitor.validation.plausibility import check_stream
from consumption_monitor.validation.suites import build_suite, stream_suite

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)
SAMPLE_SIZE = 10
# COMPLETE: every unexpected row's position (quarantine needs them). Not the pandas "query"
# GX builds beside them (a string listing every position, filtered from the whole frame
# once more per expectation): nothing reads it.
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": SAMPLE_SIZE,
    "return_unexpected_index_query": False,
}
# Derivations register themselves when their module is imported; this is the one place
# that applies them, so it imports every module that defines some.
DERIVATION_MODULES = (derivations, tradein)


def expectation_label(expectation_type: str, column: str | None) -> str:
    """How an expectation is named in quarantine rows, summaries and alerts."""
    return f"{expectation_type}[{column}]" if column else expectation_type


@dataclass
class Outcome:
    """One expectation's result on one stream."""

    stream: str
    suite: str
    index: int
    expectation_type: str
    column: str | None
    severity: str
    description: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]
    kwargs: dict[str, Any]
    unexpected_rows: list[int] = field(default_factory=list)
    exception: str | None = None
    # null values a column check skipped (GX's ``missing_count``): ``unexpected_percent`` and
    # ``mostly`` count the others only; None where nothing is skipped (a null check)
    missing_count: int | None = None

    def label(self) -> str:
        return expectation_label(self.expectation_type, self.column)


@dataclass
class ValidationReport:
    feed: str
    period: str
    batch_id: str
    outcomes: list[Outcome]
    # stream -> row number -> labels of the critical expectations the row failed
    quarantine: dict[str, dict[int, list[str]]]
    rows: dict[str, int]
    # stream -> the column quarantine listings group by (e.g. the enterprise USCC)
    entity_keys: dict[str, str] = field(default_factory=dict)
    # why checks failed, each with the checks it explains (causes.py)
    causes: list[RootCause] = field(default_factory=list)
    # stream -> row -> key values of the rows warnings name (review items, review.py)
    row_keys: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return any(o.severity == "critical" and not o.success for o in self.outcomes)

    @property
    def verdict(self) -> str:
        """``info`` outcomes (e.g. 无历史数据，未检查) are reported, never a warning."""
        if self.rejected:
            return "rejected"
        if any(not o.success and o.severity != "info" for o in self.outcomes):
            return "warning"
        return "passed"

    def failures(self, severity: str | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and severity in (None, o.severity)]

    def unexplained(self, severity: str | None = None) -> list[Outcome]:
        """Failed checks that no root cause explains: the failures to list one by one."""
        explained = {c for cause in self.causes for c in cause.explains()}
        return [o for o in self.failures(severity) if (o.stream, o.index) not in explained]

    def reasons(self) -> str:
        """Why the batch was rejected, for the task's error line: the causes first, then
        the other critical failures (never a library's exception text)."""
        parts = [cause.line() for cause in self.causes]
        parts += [
            f"{o.stream}: {o.description} ({o.label()}, "
            + (f"不符 {o.unexpected_count}" if o.unexpected_count is not None else "整批检查未通过")
            + f"{', 样例 ' + str(o.sample[:3]) if o.sample else ''})"
            for o in self.unexplained("critical")
        ]
        return "; ".join(parts)

    @property
    def quarantined_rows(self) -> int:
        return sum(len(rows) for rows in self.quarantine.values())

    def summary(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "period": self.period,
            "batch_id": self.batch_id,
            "verdict": self.verdict,
            "rows": dict(self.rows),
            "quarantined": {s: len(r) for s, r in self.quarantine.items()},
            "evaluated": len(self.outcomes),
            "failed_critical": [f"{o.stream}:{o.label()}" for o in self.failures("critical")],
            "failed_warning": [f"{o.stream}:{o.label()}" for o in self.failures("warning")],
            "root_causes": [cause.to_dict() for cause in self.causes],
        }


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(
            value, default=lambda v: v.item() if hasattr(v, "item") else str(v), ensure_ascii=False
        )
    )


def _outcome(stream: str, suite: str, result: dict[str, Any]) -> Outcome:
    cfg = result["expectation_config"]
    kwargs = {k: v for k, v in cfg["kwargs"].items() if k != "batch_id"}
    res = result.get("result") or {}
    exc = result.get("exception_info") or {}
    message = exc.get("exception_message") if isinstance(exc, dict) else None
    if not message and isinstance(exc, dict):
        nested = [v.get("exception_message") for v in exc.values() if isinstance(v, dict)]
        message = next((m for m in nested if m), None)
    column = kwargs.get("column") or (
        "+".join(kwargs["column_list"]) if "column_list" in kwargs else None
    )
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    meta = cfg.get("meta") or {}
    return Outcome(
        stream=stream,
        suite=suite,
        index=int(meta.get("index", -1)),
        expectation_type=cfg["type"],
        column=column,
        severity=str(cfg.get("severity") or "critical"),
        description=str(meta.get("description", "")),
        success=bool(result["success"]),
        element_count=res.get("element_count"),
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"),
        sample=_jsonable(res.get("partial_unexpected_list", [])[:SAMPLE_SIZE]),
        kwargs=_jsonable(kwargs),
        unexpected_rows=[int(i) for i in res.get("unexpected_index_list") or []],
        exception=message,
        missing_count=res.get("missing_count"),
    )


def _no_batch_fingerprints() -> None:
    """Stop GX fingerprinting every dataframe batch it is given.

    Why: GX's pandas engine stores an md5 of ``pd.util.hash_pandas_object(df)`` among the
    batch markers of every in-memory batch smaller than ``HASH_THRESHOLD`` bytes, for its
    data docs; an ephemeral context never reads it, and on a 50,000-row trade-in chunk it
    was 40 % of the suite's run time. A threshold of 0 skips it; validation results are
    unaffected. Should a GX release drop the constant, nothing changes.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


class SuiteRunner:
    """One GX context, batch definition and suite for every frame of a stream.

    Why: a transaction-scale stream is validated chunk by chunk; building the context per
    chunk costs time and leaves registrations behind in GX, so memory would grow with the
    number of chunks. Each ``run`` validates a new dataframe on the same definition."""

    def __init__(self, suite_doc: dict[str, Any]) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        _no_batch_fingerprints()
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm
        asset = context.data_sources.add_pandas("batch").add_dataframe_asset(suite_doc["name"])
        self.definition = asset.add_batch_definition_whole_dataframe("whole")
        self.suite = build_suite(suite_doc)

    def run(self, frame: pd.DataFrame, params: dict[str, Any]) -> list[dict]:
        batch = self.definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            self.suite,
            result_format=RESULT_FORMAT,
            expectation_parameters=params,
        )
        return result.to_json_dict()["results"]


def _run_suite(
    frame: pd.DataFrame, suite_doc: dict[str, Any], params: dict[str, Any]
) -> list[dict]:
    return SuiteRunner(suite_doc).run(frame, params)


Runners = dict[tuple[str, ...], SuiteRunner]  # one per set of columns present
ChunkResult = tuple[list[Outcome], dict[int, list[str]]]  # outcomes, critical failures by row
Checked = tuple[pd.DataFrame, list[Outcome], dict[int, list[str]]]  # a chunk with its result


def derive_frame(stream: StreamSpec, frame: pd.DataFrame, ctx: DeriveContext) -> pd.DataFrame:
    """The frame with its check columns derived, indexed by position (GX reports
    positions)."""
    return apply(stream.derive, frame.reset_index(drop=True), stream.name, ctx)


def suite_outcomes(
    stream: StreamSpec, frame: pd.DataFrame, period: str, runners: Runners | None = None
) -> tuple[list[Outcome], dict[int, list[str]]]:
    """Run the stream's suite (file and spec checks) on a derived frame; outcomes and the
    critical failures by row (``_row``, the position in the whole batch). ``runners``
    keeps the GX runner of each column set across the chunks of a batch."""
    present = tuple(c for c in stream.column_names if c in frame.columns)
    # code lists live in the spec (one source for templates and checks): suites refer
    # to them as {"$PARAMETER": "choices_<column>"}
    params = {f"choices_{c.name}": list(c.choices) for c in stream.columns if c.choices}
    params = {"expected_periods": [period], **params}
    if runners is not None:
        if present not in runners:
            runners[present] = SuiteRunner(stream_suite(stream, present))
        results = runners[present].run(frame, params)
    else:
        results = _run_suite(frame, stream_suite(stream, present), params)
    outcomes = sorted(
        (_outcome(stream.name, stream.suite_name, r) for r in results), key=lambda o: o.index
    )
    for o in outcomes:  # the library's text goes to the task log, never to an operator
        if o.exception:
            log.info("%s: %s could not run: %s", stream.name, o.label(), o.exception)
    rows: dict[int, list[str]] = {}
    row_numbers = frame[ROW]
    for outcome in outcomes:
        if outcome.severity != "critical":
            continue
        for position in outcome.unexpected_rows:
            rows.setdefault(int(row_numbers.iat[position]), []).append(outcome.label())
    return outcomes, rows


def _check_stream(
    stream: StreamSpec,
    frame: pd.DataFrame,
    ctx: DeriveContext,
    period: str,
    runners: Runners | None = None,
) -> tuple[list[Outcome], dict[int, list[str]]]:
    """Derive and run the stream's suite on one frame (:func:`derive_frame`,
    :func:`suite_outcomes`)."""
    return suite_outcomes(stream, derive_frame(stream, frame, ctx), period, runners)


def _warned_row_keys(
    feed: FeedSpec, frames: dict[str, pd.DataFrame], outcomes: list[Outcome]
) -> dict[str, dict[int, dict[str, Any]]]:
    """The typed key values of every row a failed warning names (batch positions: a
    whole-batch frame's ``_row`` is its position), for review items to find them again."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for stream in feed.streams:
        rows = {
            r
            for o in outcomes
            if o.stream == stream.name and o.severity == "warning" and not o.success
            for r in o.unexpected_rows
        }
        frame = frames[stream.name]
        if not rows or not set(stream.keys) <= set(frame.columns):
            continue
        hit = frame[frame[ROW].isin(rows)]
        out[stream.name] = {
            int(r[ROW]): {k: _jsonable(r[k]) for k in stream.keys} for r in hit.to_dict("records")
        }
    return out


def validate_batch(
    feed: FeedSpec,
    period: str,
    batch_id: str,
    frames: dict[str, pd.DataFrame],
    previous: dict[str, pd.DataFrame] | None = None,
    engine: Engine | None = None,
) -> ValidationReport:
    """Derive check columns, run each stream's suite, apply the severity policy. With the
    warehouse's ``engine``, the streams' plausibility rules judge the batch against the
    loaded history too (``plausibility.py``); their outcomes follow the same policy."""
    ctx = DeriveContext(
        period=period,
        frames=frames,
        previous=previous or {},
        keys={s.name: s.keys for s in feed.streams},
    )
    outcomes: list[Outcome] = []
    quarantine: dict[str, dict[int, list[str]]] = {}
    for stream in feed.streams:
        stream_outcomes, rows = _check_stream(stream, frames[stream.name], ctx, period)
        if engine is not None:
            judged = [
                Outcome(**o) for o in check_stream(engine, stream, period, frames[stream.name])
            ]
            for outcome in judged:
                if outcome.severity == "critical":  # rule outcomes carry batch rows (_row)
                    for row in outcome.unexpected_rows:
                        rows.setdefault(row, []).append(outcome.label())
            stream_outcomes += judged
        outcomes.extend(stream_outcomes)
        quarantine[stream.name] = dict(sorted(rows.items()))
    report = ValidationReport(
        feed=feed.name,
        period=period,
        batch_id=batch_id,
        outcomes=outcomes,
        quarantine=quarantine,
        rows={name: len(frame) for name, frame in frames.items()},
        causes=diagnose(feed, profile(frames), outcomes),
        row_keys=_warned_row_keys(feed, frames, outcomes),
    )
    log.info("validated %s %s batch %s: %s", feed.name, period, batch_id, report.summary())
    return report
