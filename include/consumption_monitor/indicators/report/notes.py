"""The footnotes of the monthly report: what a reader must know to judge the figures and
that the tables cannot show (issue 15 §3–§4). Each note is one Chinese line; the HTML page
lists them under the tables, the workbook on its 总览 sheet.

- Trade-in: the policy year's rules file lists rules not verified against a published
  notice (``unverified:`` in ``reference/tradein_rules_<year>.yaml``).
"""

from __future__ import annotations

from sqlalchemy import Engine

from consumption_monitor.common.tradein_rules import unverified_note
from consumption_monitor.indicators.catalog import Catalog

TRADEIN_FEED = "tradein_transactions"


def tradein_notes(catalog: Catalog, period: str) -> list[str]:
    """The unverified trade-in rules of the period's policy year, when a KPI reads them."""
    if not any(k.feed == TRADEIN_FEED for k in catalog.kpis):
        return []
    note = unverified_note(int(period[:4]))
    return [f"{note}（措施 12 的补贴交易按此规则校验）"] if note else []


def report_notes(engine: Engine, catalog: Catalog, period: str) -> list[str]:
    """Every footnote of the period's report, in the order shown."""
    return tradein_notes(catalog, period)
