"""``cm demo``: its options and entry point (the ``cm`` CLI module owns the sub-command itself)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cm_devtools.demo.common import CATCHUP_DAG_ID, REPO_DIR, DemoError, Layout
from cm_devtools.demo.console import Console
from cm_devtools.demo.data import parse_feeds
from cm_devtools.demo.driver import DEFAULT_FEEDS, DEFAULT_RECENT, run_demo, timeout_minutes
from cm_devtools.demo.processes import SERVICES, stop_all
from cm_devtools.demo.summary import render_failures, render_summary
from consumption_monitor.common.periods import Period, PeriodError


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cm demo`` (the CLI module owns the sub-command itself)."""
    parser.add_argument("--stop", action="store_true", help="停止演示启动的 Airflow 与样例数据服务")
    parser.add_argument(
        "--from",
        dest="period_from",
        type=parse_period_arg,
        default=Period(2024, 1),
        metavar="YYYY-MM",
        help="第一个期别 (默认 2024-01)",
    )
    parser.add_argument(
        "--to",
        dest="period_to",
        type=parse_period_arg,
        default=None,
        metavar="YYYY-MM",
        help="最后一个期别 (默认上一个完整月份)",
    )
    parser.add_argument("--port-ui", type=int, default=8080, help="Airflow 界面端口 (默认 8080)")
    parser.add_argument("--port-feed", type=int, default=8765, help="样例数据服务端口 (默认 8765)")
    parser.add_argument("--json", action="store_true", help="结果以 JSON 输出到 stdout")
    parser.add_argument(
        "--timeout-min",
        type=float,
        default=None,
        help="等待全部运行完成的上限 (分钟，默认每个数据源 10 分钟)",
    )
    parser.add_argument(
        "--feeds",
        type=parse_feeds,
        default=DEFAULT_FEEDS,
        metavar="DAG[,DAG…]|all",
        help="要加载的数据源 (DAG)，逗号分隔或 all (默认 all)",
    )
    parser.add_argument(
        "--recent",
        type=parse_recent,
        default=DEFAULT_RECENT,
        metavar="N|all",
        help=f"最近 N 期逐期经各数据源的月度 DAG 运行，更早的期别由 {CATCHUP_DAG_ID} 一次补齐"
        f" (默认 {DEFAULT_RECENT}；all = 全部期别逐期运行)",
    )


def parse_period_arg(text: str) -> Period:
    """argparse type for --from/--to."""
    try:
        return Period.parse(text)
    except PeriodError as exc:
        raise argparse.ArgumentTypeError(f"期别格式应为 YYYY-MM: {text!r}") from exc


def parse_recent(text: str) -> int | None:
    """``--recent``: a positive number of periods, or 'all' (None: no catch-up)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("--recent 应为正整数或 all")
    return value


def run_cli(args: argparse.Namespace, layout: Layout | None = None) -> int:
    """Entry point of ``cm demo``; returns the process exit code."""
    layout = layout or Layout(REPO_DIR)
    console = Console(args.json)
    if args.stop:
        stopped = stop_all(layout)
        if args.json:
            print(json.dumps({"stopped": stopped}))
        else:
            console.say(f"已停止 {stopped} 个演示进程" if stopped else "没有运行中的演示进程")
        return 0
    try:
        result, tallies = run_demo(args, layout, console)
    except (DemoError, OSError) as exc:  # OSError includes requests' connection errors
        console.say(f"演示失败 Demo failed: {exc}")
        if any(layout.pid_file(s).exists() for s in SERVICES):
            console.say(f"已启动的进程仍在后台运行；日志在 {layout.demo}，`make stop` 可停止。")
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return 1
    except KeyboardInterrupt:
        console.say("已中断；Airflow 与样例数据服务仍在后台运行，`make stop` 可停止。")
        return 130
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        if result["failures"]:
            console.say(render_failures(result["failures"], result["ui_url"]))
        if result["timed_out"]:
            console.say(
                f"超时: {timeout_minutes(args):g} 分钟内未全部完成 (可用 --timeout-min 调整)"
            )
        for feed, error in result["summary_errors"].items():
            console.say(f"{feed} 仓库摘要读取失败: {error}")
        console.say(
            render_summary(
                result["summaries"],
                tallies=tallies,
                ui_url=result["ui_url"],
                password=result["password"],
                password_file=Path(result["password_file"]),
                logs_dir=Path(result["logs_dir"]),
                elapsed_s=result["elapsed_s"],
                catchup=result.get("catchup"),
                report=result.get("report"),
            )
        )
    return 0 if result["ok"] else 1
