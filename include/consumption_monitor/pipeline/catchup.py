"""Load a range of periods of one feed in one process: the CLI's ``cm run`` and the
``feed_catchup`` DAG.

The per-period DAGs pay Airflow's task overhead (a couple of seconds per task) four times
per period; a first load of two or three years of five feeds through them takes half an
hour on a small machine. Catching up runs the very same steps (extract → validate → load →
snapshot, each load atomic and idempotent per period) in a loop, so the history loads in a
minute or two and the warehouse ends exactly as the per-period runs would leave it.

A period that fails does not stop the others: its outcome is recorded and the caller decides
(the CLI exits non-zero, the DAG task fails after the loop so that a retry picks up only
what is still missing — periods already loaded come back ``unchanged``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from consumption_monitor.common.periods import period_range
from consumption_monitor.common.runs import RunContext

#: outcomes that count as a failure of the period
FAILED = "failed"
NOT_PUBLISHED = "not_published"


@dataclass
class PeriodOutcome:
    """What happened to one period; ``retryable`` separates an outage from a rejection."""

    period: str
    outcome: str  # loaded | unchanged | not_published | failed
    batch_id: str | None = None
    verdict: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    message: str | None = None
    retryable: bool = False
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # rows, seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One human-readable line, as the CLI and the task log print it."""
        detail = self.message or (
            f"批次 {self.batch_id} 校验 {self.verdict} 行数 {self.rows} 隔离 {self.quarantined}"
        )
        return f"{self.period}  {self.outcome:<13} {detail}"


def periods_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive, as ``YYYY-MM`` strings."""
    return [str(p) for p in period_range(first, last)]


def run_one(
    feed: str, period: str, *, url: str | None = None, run: RunContext | None = None
) -> PeriodOutcome:
    """Run one period end to end and classify the result instead of raising."""
    from consumption_monitor.feeds.errors import FeedError, FeedUnavailable, PeriodNotPublished
    from consumption_monitor.pipeline.steps import BatchRejected, run_period
    from consumption_monitor.warehouse.failures import LoadFailed

    try:
        out = run_period(feed, period, url=url, run=run)
    except PeriodNotPublished as exc:
        return PeriodOutcome(period, NOT_PUBLISHED, message=str(exc))
    except (BatchRejected, FeedError) as exc:
        retryable = isinstance(exc, FeedUnavailable)
        return PeriodOutcome(period, FAILED, message=str(exc), retryable=retryable)
    except LoadFailed as exc:  # rolled back and recorded; the next periods still run
        return PeriodOutcome(period, FAILED, message=str(exc), retryable=exc.retryable)
    return PeriodOutcome(
        period,
        out["load"]["outcome"],
        batch_id=out["batch"]["batch_id"],
        verdict=out["validation"]["verdict"],
        rows=out["load"]["rows"],
        quarantined=out["validation"]["quarantined"],
        stages=out["stages"],
    )


def run_periods(
    feed: str,
    periods: Iterable[str],
    *,
    url: str | None = None,
    run: RunContext | None = None,
    on_outcome: Callable[[PeriodOutcome], None] | None = None,
) -> list[PeriodOutcome]:
    """Run the periods in the given order; every period gets an outcome."""
    outcomes = []
    for period in periods:
        outcome = run_one(feed, period, url=url, run=run)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def failure_message(feed: str, outcomes: Iterable[PeriodOutcome]) -> str | None:
    """A Chinese summary of the failed periods, or None when none failed."""
    failed = [o for o in outcomes if o.outcome == FAILED]
    if not failed:
        return None
    head = f"{feed}: {len(failed)} 期失败 ({', '.join(o.period for o in failed)})"
    return "\n".join([head, *(f"  {o.period}: {o.message}" for o in failed)])


def catchup_jobs(feeds: Iterable[str] | None, first: str, last: str | None) -> list[dict[str, Any]]:
    """One job per feed with its periods; ``feeds`` empty means every feed with a spec."""
    from consumption_monitor.common.periods import bureau_today, last_full_month
    from consumption_monitor.feeds.spec import list_feeds

    known = list_feeds()
    wanted = list(feeds or known)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"未知的数据源 {', '.join(unknown)}；可用: {', '.join(known)}")
    end = last or str(last_full_month(bureau_today()))
    periods = periods_between(first, end)
    if not periods:
        raise ValueError(f"期别范围为空: {first} … {end}")
    return [{"feed": feed, "periods": periods} for feed in wanted]
