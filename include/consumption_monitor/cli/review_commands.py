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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "revisions", help="revised figures: first published, latest, revision (mart_revisions)"
    )
    p.add_argument("--feed", type=cli_args.feed)
    p.add_argument("--period", type=cli_args.period, help="YYYY-MM")
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_revisions)
