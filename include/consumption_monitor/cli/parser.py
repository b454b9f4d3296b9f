"""``cm``'s parser and entry point: the built-in subcommands (``commands``), the ones other
packages register (entry-point group ``consumption_monitor.commands``), and the error
policy (``args``: one line, exit code 2 for a user error)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from consumption_monitor import __version__
from consumption_monitor.cli import args as cli_args
from consumption_monitor.cli import review_commands
from consumption_monitor.cli.args import EXIT_INTERNAL, EXIT_USAGE, OneLineParser, error_line
from consumption_monitor.cli.commands import (
    COMMAND_GROUP,
    _json_arg,
    _url_arg,
    cmd_analyst_role,
    cmd_catalog,
    cmd_digest,
    cmd_docs,
    cmd_feeds,
    cmd_ledger_templates,
    cmd_migrate,
    cmd_partitions,
    cmd_quarantine,
    cmd_report,
    cmd_run,
    cmd_snapshot,
    cmd_status,
    cmd_summary,
    cmd_tradein_audit,
)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="cm", description="西区提振消费专项行动监测数据平台")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="create or upgrade the warehouse schema and views")
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("run", help="run a feed for one period or a range, without Airflow")
    p.add_argument("--feed", default="retail_monthly", type=cli_args.feed)
    p.add_argument("--period", type=cli_args.period, help="YYYY-MM")
    p.add_argument("--from", dest="start", type=cli_args.period, help="first period YYYY-MM")
    p.add_argument("--to", dest="end", type=cli_args.period, help="last period YYYY-MM")
    p.add_argument(
        "--open",
        action="store_true",
        help="pull again the loaded periods that still have open rows (spec repull:)",
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("snapshot", help="compute and print the indicator snapshot of a period")
    p.add_argument("--period", required=True, type=cli_args.period, help="YYYY-MM")
    p.add_argument(
        "--no-compute", action="store_true", help="only print the latest stored snapshot"
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("report", help="write the monthly report (HTML and XLSX) of a period")
    p.add_argument("--period", required=True, type=cli_args.period, help="YYYY-MM")
    p.add_argument(
        "--out", type=cli_args.text, help="folder (default: CM_REPORTS_DIR or <data dir>/reports)"
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("docs", help="generate the data dictionary into docs/")
    p.add_argument(
        "--out", type=cli_args.text, help="file to write (default: docs/data-dictionary.md)"
    )
    _json_arg(p)
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser(
        "analyst-role",
        help="create/refresh the read-only PostgreSQL role cm_analyst "
        "(password from CM_ANALYST_PASSWORD, if set)",
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_analyst_role)

    p = sub.add_parser("catalog", help="list the plan's 19 measures, their KPIs and targets")
    _json_arg(p)
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("summary", help="periods loaded, rows, validation outcomes")
    p.add_argument("--feed", default="retail_monthly", type=cli_args.feed)
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("digest", help="sha256 of every core and mart table (compare warehouses)")
    p.add_argument(
        "--exclude-volatile",
        action="store_true",
        help="leave out computation timestamps (to compare separately built ones)",
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("quarantine", help="list quarantined rows with their failed checks")
    p.add_argument("--feed", default="retail_monthly", type=cli_args.feed)
    p.add_argument("--period", type=cli_args.period, help="YYYY-MM")
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser(
        "tradein-audit",
        help="quarantined trade-in transactions by enterprise (rule breaches to follow up)",
    )
    p.add_argument("--period", type=cli_args.period, help="YYYY-MM")
    p.add_argument("--year", type=cli_args.year, help="YYYY")
    p.add_argument("--enterprise", type=cli_args.uscc, help="enterprise USCC")
    p.add_argument(
        "--detail", action="store_true", help="one line per transaction (order id, rules)"
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_tradein_audit)

    p = sub.add_parser("feeds", help="list the feed specs")
    _json_arg(p)
    p.set_defaults(func=cmd_feeds)

    p = sub.add_parser(
        "ledger-templates", help="write the blank work-ledger Excel templates (one per ledger)"
    )
    p.add_argument(
        "--out", required=True, type=cli_args.text, help="folder to write the .xlsx templates to"
    )
    _json_arg(p)
    p.set_defaults(func=cmd_ledger_templates)

    p = sub.add_parser("status", help="operations summary per feed: loads, lateness, alerts")
    p.add_argument(
        "--today", type=cli_args.day, help="YYYY-MM-DD to judge lateness on (default: today)"
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "partitions",
        help="month partitions of the warehouse and the build tables failed loads left",
    )
    p.add_argument(
        "--drop",
        action="store_true",
        help="drop the build tables attached to nothing (months being loaded now are skipped)",
    )
    _url_arg(p), _json_arg(p)
    p.set_defaults(func=cmd_partitions)

    review_commands.register(sub)  # cm revisions, cm review
    for register in command_extensions(argv, set(sub.choices)):
        register(sub)
    return parser


def command_extensions(
    argv: list[str] | None, builtin: set[str]
) -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands that other installed packages register under the entry-point group
    ``consumption_monitor.commands`` (the dev tools add ``demo``, ``feed-server``,
    ``ledger-samples`` and ``alerts preview``). The runtime package never imports them; a
    production install without the dev tools simply has none. Looked up only when the
    command is not a built-in one (reading package metadata costs ~25 ms)."""
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    if command in builtin:
        return []
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        points = distribution("consumption-monitor").entry_points
    except PackageNotFoundError:  # run from a source tree (e.g. the image's PYTHONPATH)
        return []
    return [ep.load() for ep in points if ep.group == COMMAND_GROUP]


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(argv).parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; a user error is one line on stderr and exit code 2, an
    internal error one line and exit code 1 (``-v`` shows its traceback). Shared by every
    entry point (``cm``, ``python -m cm_devtools``)."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("cm: 已中断 (interrupted)", file=sys.stderr)
        return 130
    except Exception as exc:
        line = error_line(exc, getattr(args, "url", None))
        if line is not None:
            print(f"cm: 错误 error: {line}", file=sys.stderr)
            return EXIT_USAGE
        if args.verbose:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(
            f"cm: 内部错误 internal error: {type(exc).__name__}: {first}（加 -v 查看详情，"
            "rerun with -v for the traceback）",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
