"""Revision analysis read from ``mart_revisions`` and ``mart_revision_summary``: what
``cm revisions`` prints and the monthly report's revisions section shows.

A figure is revised when a later batch of its (feed, period) published another value; the
views keep every version (staging keeps every accepted batch), so the first published
value, each later one and the latest are all there. The logic lives in one view
(``sql/staging/stg_revision_versions.sql``); this module only selects from the marts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


def revisions(
    engine: Engine, *, feed: str | None = None, period: str | None = None, revised_only=True
) -> list[dict[str, Any]]:
    """One row per revised figure (latest version), or every figure's latest version."""
    where = ["is_latest = 1"]
    params: dict[str, Any] = {}
    if revised_only:
        where.append("versions > 1 and revision_value <> 0")
    if feed:
        where.append("feed = :feed")
        params["feed"] = feed
    if period:
        where.append("period = :period")
        params["period"] = period
    sql = (
        "select feed, stream, period, entity_key, indicator, versions, "
        "first_published_value, latest_value, revision_value, revision_pct, published_at "
        f"from mart_revisions where {' and '.join(where)} "
        "order by feed, stream, period, indicator, entity_key"
    )
    with engine.connect() as conn:
        return [_plain(r) for r in conn.execute(text(sql), params).mappings()]


def revision_summary(engine: Engine, *, feed: str | None = None) -> list[dict[str, Any]]:
    """Per indicator: periods, share of periods revised, mean absolute revision."""
    sql = "select * from mart_revision_summary"
    params = {}
    if feed:
        sql += " where feed = :feed"
        params["feed"] = feed
    with engine.connect() as conn:
        rows = conn.execute(text(sql + " order by feed, stream, indicator"), params).mappings()
        return [_plain(r) for r in rows]


def _plain(row: Any) -> dict[str, Any]:
    out = {}
    for key, value in dict(row).items():
        if hasattr(value, "is_finite"):  # Decimal from PostgreSQL numeric
            value = float(value)
        out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def render_revisions(data: dict[str, Any]) -> str:
    """Text for ``cm revisions``: the revised figures, then the summary of revised indicators."""
    lines = []
    for r in data["revisions"]:
        pct = f"（{r['revision_pct']:+.2f}%）" if r["revision_pct"] is not None else ""
        lines.append(
            f"{r['period']} {r['feed']}.{r['stream']} {r['indicator']} [{r['entity_key']}] "
            f"首次公布 {r['first_published_value']} → 最新 {r['latest_value']}，"
            f"修订 {r['revision_value']:+}{pct}，共 {r['versions']} 版"
        )
    if not lines:
        lines.append("无修订")
    revised = [s for s in data["summary"] if s["periods_revised"]]
    if revised:
        lines.append("修订汇总（按指标）：")
        for s in revised:
            lines.append(
                f"  {s['feed']}.{s['stream']} {s['indicator']}：{s['periods_revised']}/"
                f"{s['periods']} 期有修订（{100 * float(s['share_periods_revised']):.1f}%），"
                f"平均绝对修订 {float(s['mean_abs_revision'] or 0):.4g}"
            )
    return "\n".join(lines)
