"""``cm revisions`` and ``cm review``: revision analysis and the verification (核实) of
warnings. Registered by ``parser.build_parser`` through :func:`register`."""

from __future__ import annotations

import argparse

from consumption_monitor.cli import args as cli_args
from consumption_monitor.cli.commands import _json_arg, _print, _url_arg


def _engine(url: str | None):
    from consumption_monitor.common import config
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.migrate import ensure_schema

    ensure_schema(config.warehouse_url(url))
    return engine_for(config.warehouse_url(url))


def cmd_revisions(args: argparse.Namespace) -> int:
    from consumption_monitor.indicators.revisions import (
        render_revisions,
        revision_summary,
        revisions,
    )

    engine = _engine(args.url)
    data = {
        "revisions": revisions(engine, feed=args.feed, period=args.period),
        "summary": revision_summary(engine, feed=args.feed),
    }
    _print(data, args.json, render_revisions)
    return 0


def _line(item: dict) -> str:
    from consumption_monitor.validation.review import describe

    return (
        f"{item['item_id'][:12]} {item['period']} {item['feed']}.{item['stream']} {describe(item)}"
    )


def _detail(item: dict) -> str:
    from consumption_monitor.validation.review import STATUS_LABELS

    lines = [_line(item), f"  规则 {item['rule']}（{item['severity']}），批次 {item['batch_id']}"]
    if item.get("explanation"):
        lines.append(f"  说明时间 {item['explained_at']}")
    if item.get("decided_by"):
        note = f"：{item['decision_note']}" if item.get("decision_note") else ""
        lines.append(
            f"  {STATUS_LABELS[item['status']]}（{item['decided_by']}，{item['decided_at']}）{note}"
        )
    lines += [f"  第{r['row']}行 {r['key']}" for r in item["rows"]]
    return "\n".join(lines)


def _review_call(action):
    from consumption_monitor.cli.args import UserError
    from consumption_monitor.validation.review import ReviewError

    try:
        return action()
    except ReviewError as exc:
        zh, _, en = str(exc).partition(" (")
        raise UserError(zh, en.rstrip(")")) from None


def cmd_review(args: argparse.Namespace) -> int:
    from consumption_monitor.validation import review

    engine = _engine(args.url)
    if args.action == "list":
        items = review.list_items(
            engine,
            feed=args.feed,
            period=args.period,
            status=None if args.status == "all" else args.status,
            current_only=not args.all,
        )
        _print(items, args.json, lambda d: "\n".join(_line(i) for i in d) or "无核实项")
        return 0
    item_id = args.item
    if args.action == "show":
        item = _review_call(lambda: review.show(engine, item_id))
    elif args.action == "explain":
        item = _review_call(lambda: review.explain(engine, item_id, args.text, args.by))
    elif args.action == "accept":
        item = _review_call(lambda: review.accept(engine, item_id, args.by, args.note))
    else:
        from consumption_monitor.pipeline.steps import snapshot_periods

        item = _review_call(lambda: review.reject(engine, item_id, args.by, args.note))
        item["snapshots"] = snapshot_periods([item["period"]], url=args.url)
    _print(item, args.json, _detail)
    return 0


def _review_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="verify warnings (核实): list, show, explain, accept, reject")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("list", help="review items (default: open ones of current batches)")
    q.add_argument("--feed", type=cli_args.feed)
    q.add_argument("--period", type=cli_args.period, help="YYYY-MM")
    q.add_argument("--status", choices=["open", "explained", "accepted", "rejected", "all"])
    q.add_argument("--all", action="store_true", help="items of superseded batches too")
    _url_arg(q), _json_arg(q)
    for name, what in (
        ("show", "one item with its rows"),
        ("explain", "the responsible unit's explanation"),
        ("accept", "the figure stands"),
        ("reject", "the figure is wrong: quarantine its rows, recompute snapshots"),
    ):
        q = actions.add_parser(name, help=what)
        q.add_argument("item", type=cli_args.text, help="item id (or its first 6+ characters)")
        if name == "explain":
            q.add_argument("--text", required=True, type=cli_args.text, help="the explanation")
        if name != "show":
            q.add_argument("--by", required=True, type=cli_args.text, help="who")
        if name in ("accept", "reject"):
            q.add_argument("--note", type=cli_args.text)
        _url_arg(q), _json_arg(q)
    p.set_defaults(func=cmd_review)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "revisions", help="revised figures: first published, latest, revision (mart_revisions)"
    )
    p.add_argument("--feed", type=cli_args.feed)
    p.add_argument("--period", type=cli_args.period, help="YYYY-MM")
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_revisions)
    _review_parser(sub)
