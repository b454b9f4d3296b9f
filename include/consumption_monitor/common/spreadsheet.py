"""Spreadsheets the platform writes are safe to open: no cell text runs as a formula.

A value such as ``= 100`` (a target), ``+86 139…`` or ``@SUM(…)`` from a feed or a unit's
remark would be stored by openpyxl as a live formula (CSV/XLSX formula injection). Every
workbook the platform writes (the monthly report, the ledger templates, sample ledgers)
passes through ``text_only`` before it is saved: string cells that start with ``=``, ``+``,
``-`` or ``@`` become text cells with Excel's quote prefix, shown exactly as written.
The platform writes no intentional formulas; numbers stay numbers.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@")


def text_only(workbook: Any) -> Any:
    """Turn every formula-like string cell of every sheet into text (in place)."""
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str) and value.lstrip().startswith(FORMULA_STARTS):
                    cell.data_type = "s"
                    cell.quotePrefix = True
    return workbook
