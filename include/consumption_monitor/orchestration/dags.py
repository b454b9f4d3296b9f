"""Airflow glue shared by every feed DAG: one builder, thin DAG files.

Only ``airflow.sdk`` and this package's light modules are imported at parse time; the
pipeline (pandas, SQLAlchemy, Great Expectations) is imported inside the tasks.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Asset, dag, get_current_context, task

from consumption_monitor.common.periods import BUREAU_TIMEZONE, period_of_interval_start
from consumption_monitor.orchestration.notifiers import feed_notifiers

TIMEZONE = BUREAU_TIMEZONE  # re-exported for the DAG files
log = logging.getLogger(__name__)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "区统计局",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def feed_asset(feed: str) -> Asset:
    """The Asset a feed DAG updates when it loads a period (consumed by snapshot DAGs)."""
    return Asset(name=f"cm.{feed}", uri=f"cm://warehouse/core/{feed}", group="warehouse")


def _period(context: dict[str, Any]) -> str:
    return str(period_of_interval_start(context["data_interval_start"], TIMEZONE))


def _run_context(context: dict[str, Any]):
    from consumption_monitor.warehouse.loader import RunContext

    ti = context["ti"]
    return RunContext(
        dag_id=ti.dag_id,
        dag_run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", None),
    )


def build_feed_dag(
    feed: str,
    *,
    schedule: Any,
    start_date: Any,
    tags: list[str],
    doc_md: str | None = None,
    max_active_runs: int = 2,
    default_args: dict[str, Any] | None = None,
) -> DAG:
    """extract → validate → load → snapshot for the period of each run's data interval.

    Alerts are task-level callbacks (DAG-level failure callbacks are unreliable in Airflow
    3.1–3.2): every task alerts when it fails for good; the load task's success sends
    recoveries and the warning-level alert. ``default_args`` overrides (tests: retry delay).
    """
    asset = feed_asset(feed)
    args = {
        **DEFAULT_ARGS,
        "on_failure_callback": feed_notifiers(feed, "failure"),
        **(default_args or {}),
    }

    @dag(
        dag_id=feed,
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=max_active_runs,
        default_args=args,
        tags=["consumption-monitor", "feed", *tags],
        doc_md=doc_md,
        render_template_as_native_obj=True,
    )
    def feed_dag() -> None:
        @task(task_display_name="抽取 extract")
        def extract() -> dict[str, Any]:
            """Fetch the period into the raw archive; January-style gaps skip the run."""
            from airflow.sdk.exceptions import AirflowSkipException

            from consumption_monitor.feeds.errors import PeriodNotPublished
            from consumption_monitor.pipeline.steps import extract_step

            context = get_current_context()
            try:
                return extract_step(feed, _period(context), run=_run_context(context))
            except PeriodNotPublished as exc:
                raise AirflowSkipException(str(exc)) from exc

        @task(task_display_name="校验 validate")
        def validate(batch: dict[str, Any]) -> dict[str, Any]:
            """Run the GX suites; a rejected batch fails at once (retrying cannot fix it)."""
            from airflow.sdk.exceptions import AirflowFailException

            from consumption_monitor.pipeline.steps import BatchRejected, validate_step

            try:
                return validate_step(feed, batch, run=_run_context(get_current_context()))
            except BatchRejected as exc:
                raise AirflowFailException(str(exc)) from exc

        @task(
            task_display_name="入库 load",
            outlets=[asset],
            on_success_callback=feed_notifiers(feed, "load_success"),
        )
        def load(batch: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
            """Make the batch the current version of its period, atomically."""
            from consumption_monitor.pipeline.steps import load_step

            context = get_current_context()
            result = load_step(feed, batch, run=_run_context(context))
            context["outlet_events"][asset].extra = {
                "period": batch["period"],
                "batch_id": batch["batch_id"],
                "outcome": result["outcome"],
                "verdict": validation["verdict"],
            }
            return result

        @task(task_display_name="指标快照 snapshot")
        def snapshot(loaded: dict[str, Any]) -> dict[str, Any]:
            from consumption_monitor.pipeline.steps import snapshot_step

            return snapshot_step(feed, loaded["period"])

        batch = extract()
        snapshot(load(batch, validate(batch)))

    return feed_dag()


CATCHUP_DAG_ID = "feed_catchup"
CATCHUP_ALIAS = "cm.catchup"


def _alert_catchup(feed: str, outcomes: list[Any], context: dict[str, Any]) -> None:
    """Per-period alerts of a catch-up task on the configured channels. A failure is final
    when no period can succeed on a retry, or no retry is left (no noise from retries)."""
    from consumption_monitor.alerts.channels import configured_channels
    from consumption_monitor.alerts.service import on_catchup_outcomes

    ti = context["ti"]
    final = not any(o.retryable for o in outcomes) or ti.try_number > getattr(ti, "max_tries", 0)
    try:
        on_catchup_outcomes(feed, outcomes, context, configured_channels(), final=final)
    except Exception:  # an alert must never turn a load into a failure
        log.exception("catch-up alerts for %s not sent", feed)


def build_catchup_dag(*, start_date: Any, doc_md: str | None = None) -> DAG:
    """One mapped task per feed loads a range of periods in one process (see catchup.py).

    Triggered by hand (or by ``cm demo``) with ``feeds``, ``from`` and ``to``; each loaded
    period emits an event on its feed's Asset through an alias, as the per-period DAGs do.
    """
    from airflow.sdk import AssetAlias, Param

    alias = AssetAlias(CATCHUP_ALIAS)

    @dag(
        dag_id=CATCHUP_DAG_ID,
        schedule=None,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["consumption-monitor", "catch-up"],  # not "feed": it has no schedule of its own
        doc_md=doc_md,
        params={
            "feeds": Param([], type="array", description="feed ids; empty = every feed"),
            "from": Param("2024-01", type="string", pattern=r"^\d{4}-\d{2}$"),
            "to": Param(
                None,
                type=["null", "string"],
                description="last period YYYY-MM; empty = the last full month",
            ),
        },
        render_template_as_native_obj=True,
    )
    def catchup_dag() -> None:
        @task(task_display_name="规划 plan")
        def plan() -> list[dict[str, Any]]:
            """Resolve the feeds and the period range; unknown feeds fail the run at once."""
            from airflow.sdk.exceptions import AirflowFailException

            from consumption_monitor.pipeline.catchup import catchup_jobs

            params = get_current_context()["params"]
            try:
                return catchup_jobs(params.get("feeds"), params["from"], params.get("to"))
            except ValueError as exc:
                raise AirflowFailException(str(exc)) from exc

        @task(
            task_display_name="补数 catch up",
            outlets=[alias],
            map_index_template="{{ feed_label }}",
            max_active_tis_per_dagrun=2,
        )
        def catch_up(job: dict[str, Any]) -> list[dict[str, Any]]:
            """Run every period of one feed; fail after the loop if any period failed."""
            from airflow.sdk.exceptions import AirflowFailException

            from consumption_monitor.pipeline.catchup import failure_message, run_periods

            context = get_current_context()
            feed = job["feed"]
            context["feed_label"] = feed
            outcomes = run_periods(
                feed,
                job["periods"],
                run=_run_context(context),
                on_outcome=lambda o: print(o.line(), flush=True),
            )
            _alert_catchup(feed, outcomes, context)
            loaded = [o.period for o in outcomes if o.outcome in {"loaded", "unchanged"}]
            if loaded:
                context["outlet_events"][alias].add(
                    feed_asset(feed), extra={"periods": loaded, "source": CATCHUP_DAG_ID}
                )
            message = failure_message(feed, outcomes)
            if message:
                if any(o.retryable for o in outcomes):
                    raise RuntimeError(message)  # an outage: a retry may get through
                raise AirflowFailException(message)
            return [o.to_dict() for o in outcomes]

        catch_up.expand(job=plan())

    return catchup_dag()


def periods_of_events(events: Any) -> list[str]:
    """The periods named in the ``extra`` of triggering asset events: ``period`` from a feed
    DAG's load, ``periods`` from a feed_catchup task."""
    periods: set[str] = set()
    for key in list(events or {}):
        for event in events[key]:
            extra = getattr(event, "extra", None) or {}
            if extra.get("period"):
                periods.add(str(extra["period"]))
            periods.update(str(p) for p in extra.get("periods") or [])
    return sorted(periods)


def build_snapshot_dag(*, feeds: list[str], doc_md: str | None = None) -> DAG:
    """Recompute the indicator snapshots of every period a feed load affects.

    Scheduled on the feeds' Assets (any of them): the loads' periods come from the events'
    ``extra``; a manual run takes ``periods`` from its params (empty: nothing to do).
    """
    from airflow.sdk import AssetAny, Param

    condition = AssetAny(*(feed_asset(f) for f in feeds))

    @dag(
        dag_id="indicator_snapshots",
        schedule=condition,
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["consumption-monitor", "snapshot", "measure-catalog"],
        doc_md=doc_md,
        params={"periods": Param([], type="array", description="periods YYYY-MM for a manual run")},
    )
    def snapshot_dag() -> None:
        @task(task_display_name="受影响期别 periods")
        def periods() -> list[str]:
            """The periods loaded by the triggering feed runs, or the manual params."""
            context = get_current_context()
            found = periods_of_events(context.get("triggering_asset_events"))
            return found or [str(p) for p in context["params"].get("periods") or []]

        @task(task_display_name="指标快照 snapshot")
        def snapshot(loaded: list[str]) -> dict[str, Any]:
            """Every KPI of those periods and of the later ones they affect."""
            from consumption_monitor.pipeline.steps import snapshot_periods

            return snapshot_periods(loaded)

        @task(task_display_name="月报 report")
        def report(done: dict[str, Any]) -> dict[str, Any] | None:
            """The HTML and XLSX report of the latest recomputed period."""
            from consumption_monitor.pipeline.steps import report_step

            return report_step(done["periods"])

        report(snapshot(periods()))

    return snapshot_dag()


def build_lateness_dag(*, schedule: Any, start_date: Any, doc_md: str | None = None) -> DAG:
    """One task a day: every feed's periods past their due date and not loaded alert once."""

    @dag(
        dag_id="feed_lateness",
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["consumption-monitor", "alerts"],
        doc_md=doc_md,
    )
    def lateness_dag() -> None:
        @task(task_display_name="逾期检查 check")
        def check() -> list[dict[str, Any]]:
            """Today is the end of the run's interval in the bureau's time zone."""
            from zoneinfo import ZoneInfo

            from consumption_monitor.alerts.channels import configured_channels
            from consumption_monitor.alerts.service import check_lateness

            context = get_current_context()
            today = context["data_interval_end"].astimezone(ZoneInfo(TIMEZONE)).date()
            return [d.__dict__ for d in check_lateness(configured_channels(), today)]

        check()

    return lateness_dag()
