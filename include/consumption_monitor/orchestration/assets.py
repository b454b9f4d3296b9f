"""The Assets the DAGs talk through, and what their events say.

A feed DAG's load task updates its feed's Asset with ``extra={"period": ...}``; a
feed_catchup task emits events on the same Assets through the ``cm.catchup`` alias with
``extra={"periods": [...]}``. The snapshot DAG is scheduled on every feed's Asset and reads
the periods back with ``periods_of_events``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

CATCHUP_ALIAS = "cm.catchup"


def feed_asset(feed: str) -> Asset:
    """The Asset a feed DAG updates when it loads a period (consumed by snapshot DAGs)."""
    return Asset(name=f"cm.{feed}", uri=f"cm://warehouse/core/{feed}", group="warehouse")


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
