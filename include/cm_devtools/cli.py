"""The dev tools' subcommands of ``cm``: ``demo``, ``feed-server``, ``ledger-samples`` and
``alerts preview``.

They are registered through the entry-point group ``consumption_monitor.commands``
(``pyproject.toml``), so ``cm demo`` works in a development install while the runtime
package never imports the dev tools. ``python -m cm_devtools COMMAND`` runs them without the
package metadata (the compose file's sample feed server does).
"""

from __future__ import annotations

import argparse
import sys

from consumption_monitor.cli import args as cli_args
from consumption_monitor.cli.commands import _json_arg, _print, _url_arg


def cmd_ledger_samples(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cm_devtools.ledger_samples import write_samples

    written = write_samples(Path(args.out), args.start, args.end)
    data = {
        "files": [str(f.path) for f in written],
        "rows": sum(f.rows for f in written),
    }
    _print(
        data,
        args.json,
        lambda d: f"已生成 {len(d['files'])} 个样例台账文件（{d['rows']} 行）：{args.out}",
    )
    return 0


def cmd_alerts_preview(args: argparse.Namespace) -> int:
    from cm_devtools.alert_preview import preview, render
    from consumption_monitor.common.periods import bureau_today, last_full_month

    period = args.period or str(last_full_month(bureau_today()))
    data = preview(args.feed, period, fault=args.fault, url=args.url, send=args.send)
    _print(data, args.json, render)
    return 0


def cmd_feed_server(args: argparse.Namespace) -> int:
    from cm_devtools.sample_server.server import run_cli

    return run_cli(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from cm_devtools.demo import run_cli

    return run_cli(args)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the dev tools' subcommands to ``cm``'s parser (or to ``python -m cm_devtools``)."""
    p = sub.add_parser(
        "ledger-samples", help="write deterministic filled sample ledgers (file-drop demo)"
    )
    p.add_argument(
        "--out", required=True, type=cli_args.text, help="folder to write the .xlsx files to"
    )
    p.add_argument(
        "--from", dest="start", default="2024-01", type=cli_args.period, help="first period"
    )
    p.add_argument(
        "--to", dest="end", type=cli_args.period, help="last period (default: last full month)"
    )
    _json_arg(p)
    p.set_defaults(func=cmd_ledger_samples)

    p = sub.add_parser("alerts", help="alerts on failed data checks (preview)")
    alerts = p.add_subparsers(dest="alerts_command", required=True, metavar="ALERTS_COMMAND")
    p = alerts.add_parser(
        "preview",
        help="show the alert a period would raise; --fault injects a bad batch first",
        description="With --fault, the period runs against the in-process sample feed server "
        "with the fault, into a scratch warehouse under <CM_DATA_DIR>/alert-preview/ (unless "
        "--url); without it, the alert is composed from the warehouse's record of the period.",
    )
    p.add_argument("--feed", default="retail_monthly", type=cli_args.feed)
    p.add_argument("--period", type=cli_args.period, help="YYYY-MM (default: the last full month)")
    p.add_argument(
        "--fault",
        help="reject (missing column), bad_rows (quarantine + warnings), feed_down, or a "
        "sample-server fault spec such as bad_rows:which=negative_amount",
    )
    p.add_argument("--send", action="store_true", help="also deliver it on the configured channels")
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_alerts_preview)

    from cm_devtools.sample_server.server import add_cli_arguments as server_args

    p = sub.add_parser("feed-server", help="serve the sample statistics feeds over HTTP")
    server_args(p)
    p.set_defaults(func=cmd_feed_server)

    from cm_devtools.demo import add_cli_arguments as demo_args

    p = sub.add_parser("demo", help="start Airflow and the feed server, run every sample period")
    demo_args(p)
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = cli_args.OneLineParser(prog="python -m cm_devtools", description="开发与演示工具")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: list[str] | None = None) -> int:
    from consumption_monitor.cli.parser import run

    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
