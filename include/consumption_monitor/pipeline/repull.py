"""Pull periods again while their rows are still open (issue 15 §4).

A 12315 month is served with the cases still being handled as 办理中; the rates of the
months their deadlines fall in are then provisional (``mart_complaints_12315_monthly.
is_provisional``). A feed whose spec declares ``repull`` (stream, column, open values,
``max_months``) has those periods pulled again by every run of its DAG (task ``repull``)
and by ``cm run --feed F --open``, through the same steps as any period (a revision loads,
an unchanged source gives ``unchanged``), until no row is open. Periods more than
``max_months`` before the newest loaded one are left as they are and listed as stale, so
an abandoned case cannot keep a period open for ever unseen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, text

from consumption_monitor.common.periods import Period
from consumption_monitor.common.runs import RunContext
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.catchup import PeriodOutcome, run_periods


@dataclass(frozen=True)
class OpenPeriods:
    """Periods with open rows: ``due`` will be pulled again, ``stale`` are too old."""

    feed: str
    counts: dict[str, int]  # period -> open rows
    due: list[str]
    stale: list[str]


def open_periods(engine: Engine, feed: str) -> OpenPeriods:
    """The feed's loaded periods with open rows in their current core rows."""
    spec = load_feed(feed)
    if spec.repull is None:
        return OpenPeriods(feed, {}, [], [])
    rule = spec.repull
    table = f"core_{spec.stream(rule.stream).table}"
    marks = ", ".join(f":v{i}" for i in range(len(rule.values)))
    params = {f"v{i}": v for i, v in enumerate(rule.values)}
    period = spec.period_field
    sql = (
        f'select "{period}" as period, count(*) as n from "{table}" '
        f'where "{rule.column}" in ({marks}) group by "{period}" order by "{period}"'
    )
    with engine.connect() as conn:
        counts = {r.period: int(r.n) for r in conn.execute(text(sql), params)}
        newest = conn.execute(text(f'select max("{period}") from "{table}"')).scalar()
    if not counts:
        return OpenPeriods(feed, {}, [], [])
    oldest = str(Period.parse(newest).shift(-rule.max_months))
    due = [p for p in counts if p >= oldest]
    return OpenPeriods(feed, counts, due, [p for p in counts if p < oldest])


def repull_open(
    feed: str,
    *,
    url: str | None = None,
    run: RunContext | None = None,
    exclude: Iterable[str] = (),
    on_outcome: Callable[[PeriodOutcome], None] | None = None,
) -> tuple[OpenPeriods, list[PeriodOutcome]]:
    """Run every open period of ``feed`` again (``exclude``: periods this run just did)."""
    from consumption_monitor.warehouse.db import engine_for

    found = open_periods(engine_for(url), feed)
    skip = set(exclude)
    periods = [p for p in found.due if p not in skip]
    return found, run_periods(feed, periods, url=url, run=run, on_outcome=on_outcome)
