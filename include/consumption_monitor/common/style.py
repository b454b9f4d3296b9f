"""The one visual language of the platform's pages: a stylesheet shared by the operator
console (``pipeline/console_page.py``), the monthly report (``indicators/report``) and the
validation reports (``validation/reports.py``, ``validation/report_web.py``).

Every page puts :data:`STYLESHEET` inline in its ``<style>`` element: the pages are
self-contained (they open offline, in a mail client and inside the Airflow UI's iframe
without another request, and no URL is fetched). Fonts fall back to the common Chinese
faces; ``@media print`` lays the report out for paper.
"""

from __future__ import annotations

#: status -> colour, for chips and bars (the report's measure statuses, the console's cells)
COLOURS: dict[str, str] = {
    "已完成": "#2e7d32",
    "正常推进": "#1565c0",
    "进度滞后": "#ef6c00",
    "严重滞后": "#c62828",
    "未完成": "#6a1b9a",  # the year is over (December's data) and the target was missed
    "达标": "#558b2f",  # a rate held so far this year
    "未达标": "#c62828",
    "未到期": "#78909c",  # a one-off deliverable not yet due
    "逾期": "#ad1457",
    "与2月合并发布": "#9e9e9e",  # no January release: comes with February
    "暂无数据": "#757575",
    "监测指标": "#00838f",
}

FONTS = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif'

STYLESHEET = """
:root { --ink: #212121; --muted: #616161; --line: #e0e0e0; --head: #f5f5f5;
        --accent: #1565c0; --ok: #2e7d32; --warn: #ef6c00; --bad: #c62828;
        --late: #ad1457; --idle: #9e9e9e; }
body { font-family: FONTS; color: var(--ink); margin: 0 auto; max-width: 1180px;
       padding: 16px 24px; font-size: 14px; line-height: 1.5; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; border-left: 5px solid var(--accent); padding-left: 8px;
     margin-top: 28px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.meta, .units, .legend, .note { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 6px; text-align: left;
         vertical-align: middle; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.fixed, .measure table { table-layout: fixed; }
tr.fail { background: #fdecea; }
tr.warn { background: #fff4e5; }
.status, .chip { display: inline-block; color: #fff; border-radius: 3px; padding: 1px 6px;
                 white-space: nowrap; font-size: 12px; line-height: 1.6; }
.summary span { display: inline-block; margin: 4px 10px 4px 0; padding: 2px 8px;
                border-radius: 10px; color: #fff; font-size: 13px; }
.chip.ok { background: var(--ok); }
.chip.warn { background: var(--warn); }
.chip.bad { background: var(--bad); }
.chip.late { background: var(--late); }
.chip.pending { background: #e3f2fd; color: #0d47a1; }
.chip.none { background: #eeeeee; color: var(--muted); }
.chip.merged { background: #f5f5f5; color: var(--muted); font-style: italic; }
.chip.info { background: #00838f; }
.chip a, a.chip { color: inherit; }
.bar { position: relative; width: 95%; height: 12px; background: #eceff1; border-radius: 2px; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 2px; }
.bar .pace { position: absolute; top: -3px; bottom: -3px; width: 2px; background: var(--ink); }
svg.trend polyline { fill: none; stroke: #00838f; stroke-width: 1.6; }
svg.trend .dots { fill: #00838f; }
svg.trend text { font-size: 9px; fill: var(--muted); }
td .mark { color: var(--late); font-weight: bold; } td small { color: var(--muted); }
.matrix { overflow-x: auto; }
.matrix table { table-layout: auto; }
.matrix td { text-align: center; padding: 3px 2px; }
.matrix td.feed, .matrix th.feed { text-align: left; white-space: nowrap; }
.matrix .chip { font-size: 11px; padding: 1px 4px; }
.matrix .links { display: block; font-size: 11px; }
.matrix .q { display: block; font-size: 11px; color: var(--bad); }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; }
  h2 { break-after: avoid; }
  .measure, tr, svg { break-inside: avoid; }
  .chip, .status, .summary span, .bar .fill, th { -webkit-print-color-adjust: exact;
                                                   print-color-adjust: exact; }
  @page { size: A4 landscape; margin: 12mm; }
}
""".replace("FONTS", FONTS).strip()


def style_element() -> str:
    """``<style>…</style>`` with the shared stylesheet, for pages built as strings."""
    return f"<style>\n{STYLESHEET}\n</style>"
