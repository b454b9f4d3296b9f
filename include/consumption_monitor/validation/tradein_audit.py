"""Trade-in rule breaches by enterprise, for the operators (``cm tradein-audit``).

The quarantine keeps every transaction a critical rule held back, with the rules it broke;
an audit follows up per selling enterprise, so the listing groups by the quarantined
row's enterprise (``audit_quarantine.entity_key``) and names each rule in Chinese.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import select

from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for

FEED = "tradein_transactions"


def _rule_names() -> dict[str, str]:
    """Expectation label -> its Chinese description (suite and history checks)."""
    from consumption_monitor.feeds.spec import load_feed
    from consumption_monitor.validation.suites import stream_suite

    stream = load_feed(FEED).streams[0]
    names: dict[str, str] = {}
    for exp in stream_suite(stream)["expectations"]:
        column = exp["kwargs"].get("column")
        label = f"{exp['type']}[{column}]" if column else exp["type"]
        names[label] = exp["meta"]["description"]
    for check in stream.history_checks:
        column = check.kwargs.get("column")
        names[f"{check.name}[{column}]" if column else check.name] = check.description
    return names


def audit_cases(
    url: str | None,
    *,
    period: str | None = None,
    year: str | None = None,
    enterprise: str | None = None,
    detail: bool = False,
) -> list[dict[str, Any]]:
    """Per enterprise (or per transaction with ``detail``): quarantined rows of batches
    that are not superseded, with counts per broken rule."""
    q, b = schema.audit_quarantine, schema.audit_load_batch
    stmt = (
        select(q.c.period, q.c.entity_key, q.c.failed_expectations, q.c.raw_values, q.c.batch_id)
        .join(b, b.c.batch_id == q.c.batch_id)
        .where(q.c.feed == FEED, b.c.status != "superseded")
        .order_by(q.c.entity_key, q.c.period, q.c.row_number)
    )
    if period:
        stmt = stmt.where(q.c.period == period)
    if year:
        stmt = stmt.where(q.c.period.like(f"{year}-%"))
    if enterprise:
        stmt = stmt.where(q.c.entity_key == enterprise)
    names = _rule_names()
    with engine_for(url).connect() as conn:
        found = conn.execute(stmt).all()
    if detail:
        return [
            {
                "period": r.period,
                "enterprise_uscc": r.entity_key,
                "enterprise_name": json.loads(r.raw_values).get("enterprise_name"),
                "order_id": json.loads(r.raw_values).get("order_id"),
                "rules": [names.get(x, x) for x in json.loads(r.failed_expectations)],
                "batch_id": r.batch_id,
            }
            for r in found
        ]
    grouped: dict[str | None, dict[str, Any]] = {}
    for r in found:
        raw = json.loads(r.raw_values)
        case = grouped.setdefault(
            r.entity_key,
            {
                "enterprise_uscc": r.entity_key,
                "enterprise_name": raw.get("enterprise_name"),
                "transactions": 0,
                "periods": set(),
                "rules": Counter(),
            },
        )
        case["transactions"] += 1
        case["periods"].add(r.period)
        case["rules"].update(names.get(x, x) for x in json.loads(r.failed_expectations))
    out = []
    for case in sorted(
        grouped.values(), key=lambda c: (-c["transactions"], str(c["enterprise_uscc"]))
    ):
        out.append(
            {
                **case,
                "periods": sorted(case["periods"]),
                "rules": dict(case["rules"].most_common()),
            }
        )
    return out


def render_cases(cases: list[dict[str, Any]], *, detail: bool = False) -> str:
    if not cases:
        return "无隔离的以旧换新交易"
    if detail:
        return "\n".join(
            f"{c['period']} {c['enterprise_uscc']} {c['enterprise_name'] or ''} "
            f"订单 {c['order_id']}：{'；'.join(c['rules'])}"
            for c in cases
        )
    lines = []
    for c in cases:
        lines.append(
            f"{c['enterprise_uscc']} {c['enterprise_name'] or ''}：隔离交易 {c['transactions']} 笔"
            f"（{', '.join(c['periods'])}）"
        )
        lines.extend(f"    {rule}：{n} 笔" for rule, n in c["rules"].items())
    return "\n".join(lines)
