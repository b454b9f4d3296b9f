"""The plan measures a feed serves and who is responsible for them, for alerts.

Alerts name the measures and responsible units the measure catalog holds
(``consumption_monitor.catalog``); messages receive them as plain data (``MeasureRef``) so
rendering does not depend on the catalog's classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureRef:
    number: int
    title: str
    responsible_units: tuple[str, ...] = ()

    def line(self) -> str:
        units = "、".join(self.responsible_units) or "未登记"
        title = f"：{self.title}" if self.title else ""
        return f"措施{self.number}{title}（责任单位：{units}）"


def measures_for_feed(feed: str) -> list[MeasureRef]:
    """The catalog's measures for ``feed``; before the catalog exists, the spec's numbers."""
    try:
        from consumption_monitor.catalog import load_catalog
    except ImportError:
        from consumption_monitor.feeds.spec import load_feed

        log.warning("measure catalog not available: alerts name measure numbers only")
        return [MeasureRef(n, "") for n in load_feed(feed).measures]
    return [
        MeasureRef(m.number, m.title, tuple(m.responsible_units))
        for m in load_catalog().measures_for_feed(feed)
    ]
