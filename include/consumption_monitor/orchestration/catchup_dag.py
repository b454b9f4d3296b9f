"""The catch-up DAG: a range of periods of several feeds, one mapped task per feed.

The periods run in one process per feed (``pipeline.catchup``); each loaded period is
announced on its feed's Asset through the ``cm.catchup`` alias, as the feed DAGs do, and
alerts go out per period as the feed's own runs would send them.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, dag, get_current_context, task

from consumption_monitor.common.runs import RunContext
from consumption_monitor.orchestration.assets import CATCHUP_ALIAS, feed_asset
from consumption_monitor.orchestration.context import run_context
from consumption_monitor.orchestration.defaults import DEFAULT_ARGS, PACKAGE_TAG

CATCHUP_DAG_ID = "feed_catchup"
log = logging.getLogger(__name__)


def _params() -> dict[str, Param]:
    return {
        "feeds": Param([], type="array", description="feed ids; empty = every feed"),
        "from": Param("2024-01", type="string", pattern=r"^\d{4}-\d{2}$"),
        "to": Param(
            None,
            type=["null", "string"],
            description="last period YYYY-MM; empty = the last full month",
        ),
    }


def _plan(params: Any) -> list[dict[str, Any]]:
    from airflow.sdk.exceptions import AirflowFailException

    from consumption_monitor.pipeline.catchup import catchup_jobs

    try:
        return catchup_jobs(params.get("feeds"), params["from"], params.get("to"))
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from exc


def _alert_catchup(feed: str, outcomes: list[Any], run: RunContext, ti: Any) -> None:
    """Per-period alerts of a catch-up task on the configured channels. A failure is final
    when no period can succeed on a retry, or no retry is left (no noise from retries)."""
    from consumption_monitor.alerts.channels import configured_channels
    from consumption_monitor.alerts.service import on_catchup_outcomes

    final = not any(o.retryable for o in outcomes) or ti.try_number > getattr(ti, "max_tries", 0)
    try:
        on_catchup_outcomes(feed, outcomes, configured_channels(), final=final, run=run)
    except Exception:  # an alert must never turn a load into a failure
        log.exception("catch-up alerts for %s not sent", feed)


def _catch_up(job: dict[str, Any], context: Any, alias: AssetAlias) -> list[dict[str, Any]]:
    from airflow.sdk.exceptions import AirflowFailException

    from consumption_monitor.pipeline.catchup import failure_message, run_periods

    feed, run = job["feed"], run_context(context)
    context["feed_label"] = feed
    outcomes = run_periods(
        feed, job["periods"], run=run, on_outcome=lambda o: print(o.line(), flush=True)
    )
    _alert_catchup(feed, outcomes, run, context["ti"])
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


def build_catchup_dag(*, start_date: Any, doc_md: str | None = None) -> DAG:
    """One mapped task per feed loads a range of periods in one process (see catchup.py).

    Triggered by hand (or by ``cm demo``) with ``feeds``, ``from`` and ``to``; each loaded
    period emits an event on its feed's Asset through an alias, as the per-period DAGs do.
    """
    alias = AssetAlias(CATCHUP_ALIAS)

    @dag(
        dag_id=CATCHUP_DAG_ID,
        schedule=None,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=[PACKAGE_TAG, "catch-up"],  # not "feed": it has no schedule of its own
        doc_md=doc_md,
        params=_params(),
        render_template_as_native_obj=True,
    )
    def catchup_dag() -> None:
        @task(task_display_name="规划 plan")
        def plan() -> list[dict[str, Any]]:
            """Resolve the feeds and the period range; unknown feeds fail the run at once."""
            return _plan(get_current_context()["params"])

        @task(
            task_display_name="补数 catch up",
            outlets=[alias],
            map_index_template="{{ feed_label }}",
            max_active_tis_per_dagrun=2,
        )
        def catch_up(job: dict[str, Any]) -> list[dict[str, Any]]:
            """Run every period of one feed; fail after the loop if any period failed."""
            return _catch_up(job, get_current_context(), alias)

        catch_up.expand(job=plan())

    return catchup_dag()
