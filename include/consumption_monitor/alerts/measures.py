"""The plan measures a feed serves and who is responsible for them, for alerts.

Alerts name the measures and responsible units the measure catalog holds
(``consumption_monitor.indicators.catalog``); messages receive them as plain data
(``MeasureRef``) so rendering does not depend on the catalog's classes.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """The catalog's measures for ``feed``, with their responsible units."""
    from consumption_monitor.indicators.catalog import load_catalog

    return [
        MeasureRef(m.number, m.title, tuple(m.responsible_units))
        for m in load_catalog().measures_for_feed(feed)
    ]
