"""The footnotes of the monthly report: what a reader must know to judge the figures and
that the tables cannot show (issue 15 §3–§4). Each note is one Chinese line; the HTML page
lists them under the tables, the workbook on its 总览 sheet.

- Trade-in: the policy year's rules file lists rules not verified against a published
  notice (``unverified:`` in ``reference/tradein_rules_<year>.yaml``).
- 12315: months of the year whose rates are provisional (cases still 办理中, pulled again
  until they close) and deadlines counted by weekends alone past the holiday calendar's
  last year (``mart_complaints_12315_monthly``).
- Sources of the same figure that disagree (``indicators/reconcile.py``).
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from consumption_monitor.common.tradein_rules import unverified_note
from consumption_monitor.common.workdays import REFERENCE_FILE, load_calendar
from consumption_monitor.indicators.catalog import Catalog
from consumption_monitor.indicators.reconcile import reconciliation_warnings

TRADEIN_FEED = "tradein_transactions"
COMPLAINTS_VIEW = "mart_complaints_12315_monthly"


def tradein_notes(catalog: Catalog, period: str) -> list[str]:
    """The unverified trade-in rules of the period's policy year, when a KPI reads them."""
    if not any(k.feed == TRADEIN_FEED for k in catalog.kpis):
        return []
    note = unverified_note(int(period[:4]))
    return [f"{note}（措施 12 的补贴交易按此规则校验）"] if note else []


def complaints_notes(engine: Engine, catalog: Catalog, period: str) -> list[str]:
    """Provisional 12315 months of the year to ``period`` and estimated deadlines."""
    if not any(k.source == COMPLAINTS_VIEW for k in catalog.kpis):
        return []
    sql = text(
        "select period, complaints_pending + reports_pending as pending, deadlines_estimated "
        f"from {COMPLAINTS_VIEW} where period between :first and :last and is_provisional = 1 "
        "order by period"
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(sql, {"first": f"{period[:4]}-01", "last": period}).all()
    except DBAPIError:  # the view is missing in a warehouse not migrated yet
        return []
    out = []
    pending = [(r.period, int(r.pending or 0)) for r in rows if r.pending]
    if pending:
        months = "、".join(f"{p}（{n} 件）" for p, n in pending)
        out.append(
            f"12315 按时率为暂定值：{months} 到期的案件在最近一次抽取时仍在办理中，"
            "其登记月份每次运行重新抽取，直至全部办结"
        )
    estimated = [(r.period, int(r.deadlines_estimated or 0)) for r in rows if r.deadlines_estimated]
    if estimated:
        last = load_calendar().last
        months = "、".join(f"{p}（{n} 件）" for p, n in estimated)
        out.append(
            f"工作日历仅覆盖至 {last.isoformat()}：{months} 的案件时限落在其后，暂按周末推算"
            f"（未计法定节假日和调休），按时率为估算值；补充 reference/{REFERENCE_FILE} 后重算"
        )
    return out


def report_notes(engine: Engine, catalog: Catalog, period: str) -> list[str]:
    """Every footnote of the period's report, in the order shown."""
    return [
        *reconciliation_warnings(engine, period),
        *complaints_notes(engine, catalog, period),
        *tradein_notes(catalog, period),
    ]
