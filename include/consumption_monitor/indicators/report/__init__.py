"""The monthly report of the plan's measures: a self-contained HTML page and an XLSX
workbook with the same tables, from the latest indicator snapshot of a period."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from consumption_monitor.common import config


def reports_dir() -> Path:
    """Where reports are written (``CM_REPORTS_DIR``, default ``<data dir>/reports``)."""
    import os

    return Path(os.environ.get("CM_REPORTS_DIR") or config.data_dir() / "reports").resolve()


def render_report(engine: Engine, period: str) -> tuple[str, bytes]:
    """The HTML page and the XLSX bytes of ``period`` (from its latest snapshot)."""
    from consumption_monitor.indicators.report.data import report_data
    from consumption_monitor.indicators.report.html import render_html
    from consumption_monitor.indicators.report.xlsx import workbook_bytes

    data = report_data(engine, period)
    return render_html(data), workbook_bytes(data)


def write_report(engine: Engine, period: str, out: Path | None = None) -> dict[str, Any]:
    """Compute the period's snapshot, then write ``<out>/<period>.html`` and ``.xlsx``."""
    from consumption_monitor.indicators.snapshots import compute_snapshot

    compute_snapshot(engine, period)
    html, xlsx = render_report(engine, period)
    folder = out or reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    html_path, xlsx_path = folder / f"{period}.html", folder / f"{period}.xlsx"
    from consumption_monitor.common.files import write_atomic

    write_atomic(html_path, html)
    write_atomic(xlsx_path, xlsx)
    return {"period": period, "html": str(html_path), "xlsx": str(xlsx_path)}
