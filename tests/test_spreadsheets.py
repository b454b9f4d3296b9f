"""Every workbook the platform writes is safe against formula injection."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from consumption_monitor.feeds.sources.workbook import build_workbook, workbook_bytes
from consumption_monitor.feeds.spec import load_feed

HOSTILE = ['=HYPERLINK("http://x","点我")', "+86 139 0000 0000", "-2+3", "@SUM(A1:A9)", " =1"]


def test_ledger_workbooks_store_formula_like_text_as_text() -> None:
    feed = load_feed("work_ledgers")
    stream = feed.streams[0]
    text_columns = [c.name for c in stream.columns if c.type == "string"]
    rows = [{name: value for name in text_columns} for value in HOSTILE]
    book = load_workbook(io.BytesIO(workbook_bytes(build_workbook(feed, stream, rows=rows))))
    cells = [c for ws in book for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    written = {c.value for c in cells if isinstance(c.value, str)}
    assert set(HOSTILE) <= written  # shown exactly as sent, as text
    numbers = [c for c in cells if isinstance(c.value, int | float)]
    assert all(c.data_type == "n" for c in numbers)
