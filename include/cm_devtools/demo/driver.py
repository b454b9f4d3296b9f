"""The demo's eight steps, from stopping leftovers to the summary of every run.

``run_demo`` reads as the outline: each step is a function of its own below, given the
``Plan`` fixed from the options before anything is touched and the ``Setup`` that step 2
prepared. ``cli.run_cli`` prints the result; ``bench/backfill.py`` drives it directly.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cm_devtools.demo.airflow_home import (
    ADMIN_USER,
    airflow_settings,
    ensure_admin_password,
    merge_airflow_cfg,
    new_feed_token,
    process_env,
    write_private,
)
from cm_devtools.demo.backfill import backfill_runs_in_flight, backfill_window, submit_backfill
from cm_devtools.demo.common import CATCHUP_DAG_ID, SNAPSHOT_DAG_ID, DemoError, Layout
from cm_devtools.demo.console import Console, Step
from cm_devtools.demo.data import (
    drop_sample_files,
    feed_command,
    file_drop_feeds,
    load_demo_summary,
    migrate_warehouse,
    parse_feeds,
    warehouse_is_empty,
)
from cm_devtools.demo.processes import Started, port_free, port_holder, spawn, stop_all, wait_for
from cm_devtools.demo.rest import AirflowApi, ApiError, airflow_ready, http_json, wait_for_dag
from cm_devtools.demo.runs import (
    TERMINAL_STATES,
    RunTally,
    describe_failures,
    report_run,
    trigger_catchup,
    wait_for_catchup,
    watch_runs,
)
from consumption_monitor.common.periods import Period, bureau_today, last_full_month

DEFAULT_FEEDS = ("all",)  # resolved by parse_feeds: every feed with a spec
#: periods at the end of the range that go through the per-period DAGs; earlier ones are
#: loaded by one feed_catchup run (see catchup.py for why)
DEFAULT_RECENT = 3
STEPS = 8


def today_shanghai(now: datetime | None = None) -> date:
    return bureau_today(now)


def _default_to() -> Period:
    return last_full_month(today_shanghai())


def timeout_minutes(args: argparse.Namespace) -> float:
    """--timeout-min, by default 10 minutes per feed."""
    feeds = resolved_feeds(args)
    return float(args.timeout_min) if args.timeout_min else 10.0 * len(feeds)


def resolved_feeds(args: argparse.Namespace) -> tuple[str, ...]:
    """The feeds of this demo (``--feeds``; every feed when not given)."""
    feeds = getattr(args, "feeds", None) or DEFAULT_FEEDS
    return parse_feeds(",".join(feeds)) if "all" in feeds else tuple(feeds)


def split_range(
    first: Period, last: Period, recent: int | None
) -> tuple[tuple[Period, Period] | None, tuple[Period, Period]]:
    """(catch-up range or None, per-period range): the last ``recent`` periods run one by
    one through the feed DAGs, the earlier ones in one feed_catchup run; ``None`` = all
    periods one by one."""
    if recent is None or recent <= 0:
        return None, (first, last)
    scheduled_first = max(first, last.shift(1 - recent))
    if scheduled_first == first:
        return None, (first, last)
    return (first, scheduled_first.shift(-1)), (scheduled_first, last)


@dataclass(frozen=True)
class Plan:
    """What one demo does, fixed from the options before anything is touched."""

    feeds: tuple[str, ...]
    first: Period
    last: Period
    catchup_range: tuple[Period, Period] | None  # loaded by one feed_catchup run
    backfill_range: tuple[Period, Period]  # run period by period through the feed DAGs
    port_ui: int
    port_feed: int
    t0: float  # time.monotonic() when the demo started
    deadline: float

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port_ui}"

    @property
    def dag_ids(self) -> list[str]:
        """The DAGs the demo waits for: every feed's, and feed_catchup when it is used."""
        return [*self.feeds, CATCHUP_DAG_ID] if self.catchup_range else list(self.feeds)


def plan_demo(args: argparse.Namespace) -> Plan:
    """The plan for ``cm demo``'s options; rejects a reversed period range."""
    t0 = time.monotonic()
    deadline = t0 + timeout_minutes(args) * 60
    feeds = resolved_feeds(args)
    first: Period = args.period_from
    last: Period = args.period_to or _default_to()
    backfill_window(first, last)  # rejects a reversed range before anything is touched
    catchup_range, backfill_range = split_range(
        first, last, getattr(args, "recent", DEFAULT_RECENT)
    )
    return Plan(
        feeds=feeds,
        first=first,
        last=last,
        catchup_range=catchup_range,
        backfill_range=backfill_range,
        port_ui=args.port_ui,
        port_feed=args.port_feed,
        t0=t0,
        deadline=deadline,
    )


@dataclass(frozen=True)
class Setup:
    """What step 2 prepared for the processes and the backfills."""

    password: str  # the admin's, for the REST API and the summary
    token: str  # the feed server's bearer token
    env: dict[str, str]  # environment of every background process
    rerun_all: dict[str, bool]  # per feed: its warehouse is empty, every run runs again
    in_flight: dict[str, int]  # per feed: backfill runs in flight


def run_demo(
    args: argparse.Namespace, layout: Layout, console: Console
) -> tuple[dict[str, Any], dict[str, RunTally]]:
    """Set up, start, backfill and wait; returns the JSON-able result and the run tallies."""
    plan = plan_demo(args)
    with Step(console, 1, STEPS, "清理旧的演示进程 Stopping leftovers"):
        stop_leftovers(layout, plan, console)
    with Step(console, 2, STEPS, "准备目录、配置与仓库 Preparing config and warehouse"):
        setup = prepare(layout, plan, console)
    with Step(console, 3, STEPS, f"启动样例数据服务 Feed server :{plan.port_feed}"):
        start_feed_server(layout, plan, setup)
    with Step(console, 4, STEPS, f"启动 Airflow standalone {plan.ui_url} (约 1 分钟)"):
        airflow = start_airflow(layout, plan, setup, console)
        api = AirflowApi(plan.ui_url, ADMIN_USER, setup.password)
    with Step(console, 5, STEPS, f"等待 DAG {', '.join(plan.dag_ids)} 解析 Parsing DAG"):
        for dag_id in plan.dag_ids:  # parsed in one pass of the folder: later ones are quick
            wait_for_dag(api, airflow, dag_id, timeout_s=180, console=console)
    catchup = run_catchup(api, airflow, plan, console)
    bf_first, bf_last = plan.backfill_range
    with Step(console, 7, STEPS, f"提交逐期回填 Backfill {bf_first} … {bf_last}"):
        expected = submit_backfills(api, plan, setup, console)
    total = sum(len(p) for p in expected.values())
    console.say(f"[8/{STEPS}] 等待各期运行完成 Waiting for {total} runs (界面 {plan.ui_url})")
    tallies, timed_out = watch_runs(
        api,
        expected,
        plan.backfill_range,
        console,
        t0=plan.t0,
        deadline=plan.deadline,
        airflow=airflow,
        runs_in_flight=setup.in_flight,
    )
    report = snapshot_report(api, airflow, layout, plan, console)
    result = outcome(
        api,
        layout,
        plan,
        password=setup.password,
        tallies=tallies,
        timed_out=timed_out,
        catchup=catchup,
        report=report,
    )
    return result, tallies


def stop_leftovers(layout: Layout, plan: Plan, console: Console) -> None:
    """Step 1: stop an earlier demo of this checkout, then make sure both ports are free."""
    stopped = stop_all(layout)
    if stopped:
        console.say(f"      已停止 {stopped} 个旧进程")
    for port, flag in ((plan.port_ui, "--port-ui"), (plan.port_feed, "--port-feed")):
        if not port_free(port):
            holder = port_holder(port)
            raise DemoError(
                f"端口 {port} 已被其他程序占用{f' ({holder})' if holder else ''}；"
                f"请释放它或用 {flag} 换一个端口"
            )


def prepare(layout: Layout, plan: Plan, console: Console) -> Setup:
    """Step 2: folders, airflow.cfg, secrets, the warehouse schema and the sample files."""
    for path in (layout.airflow_home, layout.demo, layout.data / "archive"):
        path.mkdir(parents=True, exist_ok=True)
    existing = (
        layout.airflow_cfg.read_text(encoding="utf-8") if layout.airflow_cfg.exists() else None
    )
    write_private(
        layout.airflow_cfg,
        merge_airflow_cfg(existing, airflow_settings(layout, port_ui=plan.port_ui)),
    )
    password = ensure_admin_password(layout.password_file)
    token = new_feed_token(layout.token_file)
    if not migrate_warehouse(layout.warehouse_url):
        console.say("      注意: consumption_monitor.warehouse.migrate 不可用，跳过仓库迁移")
    # An empty warehouse (first demo, or data/ deleted) needs every period loaded again,
    # even where Airflow remembers successful runs.
    rerun_all = {feed: warehouse_is_empty(layout.warehouse_url, feed) for feed in plan.feeds}
    env = process_env(layout, port_feed=plan.port_feed, token=token)
    file_feeds = drop_samples(layout, plan, env, console)
    in_flight = {
        feed: backfill_runs_in_flight(feed, plan.feeds, file_feeds=file_feeds)
        for feed in plan.feeds
    }
    return Setup(password, token, env, rerun_all, in_flight)


def drop_samples(layout: Layout, plan: Plan, env: dict[str, str], console: Console) -> list[str]:
    """The sample files of every file-drop feed into the incoming folder; those feeds."""
    file_feeds = file_drop_feeds(plan.feeds)
    incoming = Path(env.get("CM_INCOMING_DIR") or layout.data / "incoming")
    for feed in file_feeds:
        dropped, known = drop_sample_files(
            feed, incoming, layout.demo / f"staging-{feed}", plan.first, plan.last
        )
        console.say(
            f"      {feed}: 放入 {dropped} 个样例台账文件 (dropped sample files)"
            + (f"，{known} 个已处理过" if known else "")
        )
    return file_feeds


def start_feed_server(layout: Layout, plan: Plan, setup: Setup) -> Started:
    """Step 3: the sample feed server, answering its health check."""
    feed = spawn(layout, "feed-server", feed_command(plan.port_feed, setup.token), setup.env)
    feed_url = f"http://127.0.0.1:{plan.port_feed}/health"
    wait_for(
        lambda: (http_json(feed_url) or {}).get("status") == "ok",
        what="样例数据服务",
        timeout_s=60,
        started=feed,
        interval_s=0.5,
    )
    return feed


def start_airflow(layout: Layout, plan: Plan, setup: Setup, console: Console) -> Started:
    """Step 4: ``airflow standalone``, until its metadata DB, scheduler and DAG processor
    are healthy."""
    airflow = spawn(layout, "airflow", [str(layout.venv_bin / "airflow"), "standalone"], setup.env)
    wait_for(
        lambda: airflow_ready(http_json(f"{plan.ui_url}/api/v2/monitor/health")),
        what="Airflow",
        timeout_s=max(60.0, min(300.0, plan.deadline - time.monotonic())),
        started=airflow,
        interval_s=2,
        console=console,
    )
    return airflow


def run_catchup(
    api: AirflowApi, airflow: Started, plan: Plan, console: Console
) -> dict[str, Any] | None:
    """Step 6: one feed_catchup run for the periods before the recent ones, waited for;
    None when every period runs through the feed DAGs."""
    if not plan.catchup_range:
        console.say(f"[6/{STEPS}] 历史补数 Catch-up: 无 (全部期别逐期运行)")
        return None
    label = f"{plan.catchup_range[0]} … {plan.catchup_range[1]}"
    console.say(f"[6/{STEPS}] 历史补数 Catch-up {label} ({CATCHUP_DAG_ID}, 每个数据源一个任务)")
    run_id = trigger_catchup(api, plan.feeds, *plan.catchup_range)
    catchup = wait_for_catchup(
        api, run_id, plan.feeds, console, t0=plan.t0, deadline=plan.deadline, airflow=airflow
    )
    catchup.update(
        range=[str(p) for p in plan.catchup_range],
        ui=f"{plan.ui_url}/dags/{CATCHUP_DAG_ID}/runs/{run_id}",
    )
    return catchup


def submit_backfills(
    api: AirflowApi, plan: Plan, setup: Setup, console: Console
) -> dict[str, list[Period]]:
    """Step 7: a backfill per feed DAG, all DAGs unpaused at the end; the expected periods."""
    bf_first, bf_last = plan.backfill_range
    expected: dict[str, list[Period]] = {}
    for feed in plan.feeds:
        expected[feed], notes = submit_backfill(
            api,
            bf_first,
            bf_last,
            rerun_all=setup.rerun_all[feed],
            dag_id=feed,
            max_active_runs=setup.in_flight[feed],
        )
        for note in notes:
            console.say(f"      {feed}: {note}" if len(plan.feeds) > 1 else f"      {note}")
    for feed in plan.feeds:
        api.set_paused(feed, False)
    return expected


def snapshot_report(
    api: AirflowApi, airflow: Started, layout: Layout, plan: Plan, console: Console
) -> dict[str, Any] | None:
    """After the runs: the indicator snapshots and monthly report of the last period
    (None when the snapshot DAG is not there)."""
    report: dict[str, Any] | None = None
    if SNAPSHOT_DAG_ID not in plan.dag_ids:
        with contextlib.suppress(DemoError, ApiError, OSError):
            wait_for_dag(api, airflow, SNAPSHOT_DAG_ID, timeout_s=60)
            console.say(
                f"      指标快照与月报 Snapshots and report {plan.last} ({SNAPSHOT_DAG_ID}) …"
            )
            report = report_run(api, plan.last, deadline=plan.deadline + 300, airflow=airflow)
            report["html"] = str(layout.data / "reports" / f"{plan.last}.html")
            report["ui"] = f"{plan.ui_url}/cm-reports/"
    return report


def load_summaries(
    layout: Layout, feeds: tuple[str, ...]
) -> tuple[dict[str, dict[str, Any] | None], dict[str, str]]:
    """Each feed's warehouse summary (None when unreadable) and why it could not be read."""
    summaries: dict[str, dict[str, Any] | None] = {}
    summary_errors: dict[str, str] = {}
    for feed in feeds:
        try:
            summaries[feed] = load_demo_summary(layout.warehouse_url, feed)
        except Exception as exc:
            summaries[feed] = None
            summary_errors[feed] = f"{type(exc).__name__}: {exc}"
    return summaries, summary_errors


def outcome(
    api: AirflowApi,
    layout: Layout,
    plan: Plan,
    *,
    password: str,
    tallies: dict[str, RunTally],
    timed_out: bool,
    catchup: dict[str, Any] | None,
    report: dict[str, Any] | None,
) -> dict[str, Any]:
    """The demo's JSON-able result: whether everything succeeded, runs, failures, summaries."""
    failures = [
        item
        for feed, tally in tallies.items()
        if tally.failed_runs or not tally.done
        for item in describe_failures(api, tally, layout, feed)
    ]
    summaries, summary_errors = load_summaries(layout, plan.feeds)
    elapsed = time.monotonic() - plan.t0
    ok = all(t.done and not t.failed_runs for t in tallies.values()) and not timed_out
    if report is not None:
        ok = ok and report["state"] == "success"
    if catchup is not None:
        ok = ok and catchup["state"] == "success"
        timed_out = timed_out or catchup["state"] not in TERMINAL_STATES
    return {
        "ok": ok,
        "timed_out": timed_out,
        "feeds": list(plan.feeds),
        "catchup": catchup,
        "report": report,
        "periods": {f: [str(p) for p in t.expected] for f, t in tallies.items()},
        "runs": {
            f: {str(p): r.get("state") for p, r in sorted(t.runs.items())}
            for f, t in tallies.items()
        },
        "failures": failures,
        "summaries": summaries,
        "summary_errors": summary_errors,
        "ui_url": plan.ui_url,
        "username": ADMIN_USER,
        "password": password,
        "password_file": str(layout.password_file),
        "logs_dir": str(layout.demo),
        "task_logs_dir": str(layout.task_logs),
        "elapsed_s": round(elapsed, 1),
    }
