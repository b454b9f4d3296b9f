"""The feed DAG: extract → validate → load → snapshot, one period per run.

A feed DAG file is its documentation and one call, ``build_feed_dag(feed, doc_md=__doc__)``;
every other fact comes from where it is written down once:

- the schedule and start date from the feed spec (``feeds/specs/<feed>.yaml``): monthly at
  06:00 bureau time (``common.periods.BUREAU_TIMEZONE``) on ``release_day``, the first
  interval starting on the release day of ``first_period`` (2024-01 unless the spec says);
- the tags: the package's, ``feed``, the spec's own ``tags``, and ``measure-N`` for every
  measure with a KPI computed from the feed's data in the measure catalog
  (``indicators/measures.yaml``, ``Catalog.measures_for_feed``) — the same measures the
  feed's alerts name. Specs do not list measures.

Only ``airflow.sdk``, the spec and the catalog (both small YAML files) are read at parse
time; the pipeline (pandas, SQLAlchemy, Great Expectations) is imported inside the tasks.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, dag, get_current_context, task

from consumption_monitor.common.periods import BUREAU_TIMEZONE, Period
from consumption_monitor.feeds.spec import FeedSpec, load_feed
from consumption_monitor.indicators.catalog import load_catalog
from consumption_monitor.orchestration.assets import feed_asset
from consumption_monitor.orchestration.context import context_period, run_context
from consumption_monitor.orchestration.defaults import DEFAULT_ARGS, PACKAGE_TAG
from consumption_monitor.orchestration.notifiers import feed_notifiers

RUN_HOUR = 6  # bureau time, on the release day


def feed_schedule(spec: FeedSpec) -> CronDataIntervalTimetable:
    """Monthly intervals from one release day to the next: the run for March fires on
    April's release day, after the release lag, and loads March."""
    return CronDataIntervalTimetable(
        f"0 {RUN_HOUR} {spec.release_day} * *", timezone=BUREAU_TIMEZONE
    )


def feed_start_date(spec: FeedSpec) -> pendulum.DateTime:
    """The release day of the spec's first period: the first interval loads that period."""
    first = Period.parse(spec.first_period)
    return pendulum.datetime(first.year, first.month, spec.release_day, tz=BUREAU_TIMEZONE)


def feed_tags(spec: FeedSpec) -> list[str]:
    """The package's tag, ``feed``, the spec's tags and the catalog's measures of the feed."""
    measures = load_catalog().measures_for_feed(spec.name)
    return [PACKAGE_TAG, "feed", *spec.tags, *(f"measure-{m.number}" for m in measures)]


def _extract(feed: str, context: Any) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from consumption_monitor.feeds.errors import PeriodNotPublished
    from consumption_monitor.pipeline.steps import extract_step

    try:
        return extract_step(feed, context_period(context), run=run_context(context))
    except PeriodNotPublished as exc:
        raise AirflowSkipException(str(exc)) from exc


def _validate(feed: str, batch: dict[str, Any], context: Any) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from consumption_monitor.pipeline.steps import BatchRejected, validate_step

    try:
        return validate_step(feed, batch, run=run_context(context))
    except BatchRejected as exc:
        raise AirflowFailException(str(exc)) from exc


def _load(
    feed: str, batch: dict[str, Any], validation: dict[str, Any], context: Any, asset: Asset
) -> dict[str, Any]:
    from consumption_monitor.pipeline.steps import load_step

    result = load_step(feed, batch, run=run_context(context))
    context["outlet_events"][asset].extra = {
        "period": batch["period"],
        "batch_id": batch["batch_id"],
        "outcome": result["outcome"],
        "verdict": validation["verdict"],
    }
    return result


def _repull(feed: str, snapped: dict[str, Any], context: Any) -> dict[str, Any]:
    """Each re-pulled period runs extract → validate → load → snapshot (``run_period``);
    a failed one fails the task after the others ran (a retry re-pulls what is open)."""
    from consumption_monitor.pipeline.catchup import failure_message
    from consumption_monitor.pipeline.repull import repull_open

    found, outcomes = repull_open(feed, exclude=[snapped.get("period")])
    message = failure_message(feed, outcomes)
    if message:
        raise RuntimeError(message)
    return {
        "open": found.counts,
        "stale": found.stale,
        "outcomes": {o.period: o.outcome for o in outcomes},
    }


def build_feed_dag(
    feed: str,
    *,
    doc_md: str | None = None,
    max_active_runs: int = 2,
    default_args: dict[str, Any] | None = None,
) -> DAG:
    """extract → validate → load → snapshot for the period of each run's data interval.

    Alerts are task-level callbacks (DAG-level failure callbacks are unreliable in Airflow
    3.1–3.2): every task alerts when it fails for good; the load task's success sends
    recoveries and the warning-level alert. ``default_args`` overrides (tests: retry delay).
    """
    spec = load_feed(feed)
    asset = feed_asset(feed)
    args = {
        **DEFAULT_ARGS,
        "on_failure_callback": feed_notifiers(feed, "failure"),
        **(default_args or {}),
    }

    @dag(
        dag_id=feed,
        schedule=feed_schedule(spec),
        start_date=feed_start_date(spec),
        catchup=False,
        max_active_runs=max_active_runs,
        default_args=args,
        tags=feed_tags(spec),
        doc_md=doc_md,
        render_template_as_native_obj=True,
    )
    def feed_dag() -> None:
        @task(task_display_name="抽取 extract")
        def extract() -> dict[str, Any]:
            """Fetch the period into the raw archive; January-style gaps skip the run."""
            return _extract(feed, get_current_context())

        @task(task_display_name="校验 validate")
        def validate(batch: dict[str, Any]) -> dict[str, Any]:
            """Run the GX suites; a rejected batch fails at once (retrying cannot fix it)."""
            return _validate(feed, batch, get_current_context())

        @task(
            task_display_name="入库 load",
            outlets=[asset],
            on_success_callback=feed_notifiers(feed, "load_success"),
        )
        def load(batch: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
            """Make the batch the current version of its period, atomically."""
            return _load(feed, batch, validation, get_current_context(), asset)

        @task(task_display_name="指标快照 snapshot")
        def snapshot(loaded: dict[str, Any]) -> dict[str, Any]:
            from consumption_monitor.pipeline.steps import snapshot_step

            return snapshot_step(feed, loaded["period"])

        batch = extract()
        snapped = snapshot(load(batch, validate(batch)))
        if spec.repull is not None:

            @task(task_display_name="重新抽取未办结期 repull")
            def repull(snapped: dict[str, Any]) -> dict[str, Any]:
                """Pull again the earlier periods that still have open rows (spec repull:)."""
                return _repull(feed, snapped, get_current_context())

            repull(snapped)

    return feed_dag()
