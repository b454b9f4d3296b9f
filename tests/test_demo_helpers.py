"""Pure helpers of `make demo`: pid files, process ownership, config, periods, rendering.

No Airflow process is started here; the stop tests only use `sleep` children.
"""

from __future__ import annotations

import argparse
import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cm_devtools.demo.airflow_home import (
    SECRET_OPTIONS,
    airflow_settings,
    ensure_admin_password,
    merge_airflow_cfg,
    new_feed_token,
    process_env,
)
from cm_devtools.demo.backfill import (
    backfill_body,
    backfill_runs_in_flight,
    backfill_window,
    period_of_logical_date,
    runs_to_rerun,
)
from cm_devtools.demo.cli import add_cli_arguments, parse_period_arg, parse_recent
from cm_devtools.demo.common import DAG_ID, REPO_DIR, DemoError, Layout
from cm_devtools.demo.console import format_duration
from cm_devtools.demo.data import available_feeds, drop_sample_files, feed_command, parse_feeds
from cm_devtools.demo.driver import (
    DEFAULT_RECENT,
    resolved_feeds,
    split_range,
    timeout_minutes,
    today_shanghai,
)
from cm_devtools.demo.processes import (
    OWNER_ENV,
    PidRecord,
    ProcInfo,
    boot_id,
    owned_pids,
    parse_stat,
    pid_alive,
    port_free,
    port_holder,
    read_pid_file,
    read_proc_table,
    stop_all,
    trusted_group,
    write_pid_file,
)
from cm_devtools.demo.rest import airflow_ready, is_lock_refusal
from cm_devtools.demo.runs import (
    RunTally,
    catchup_progress,
    progress_line,
    progress_line_all,
    tally_runs,
    task_log_path,
)
from cm_devtools.demo.summary import render_failures, render_summary
from consumption_monitor.common.periods import BUREAU_TZ as SHANGHAI
from consumption_monitor.common.periods import Period, period_range

# --- pid files -----------------------------------------------------------------------------


def test_pid_file_round_trip(tmp_path: Path) -> None:
    record = PidRecord(
        pid=123, pgid=123, command="airflow standalone", started_at=1.5, boot_id="b", starttime=42
    )
    path = tmp_path / "demo" / "airflow.pid"
    write_pid_file(path, record)
    assert read_pid_file(path) == record
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("content", ["", "garbage", "{}", '{"pid": "x"}', "[1, 2]"])
def test_unreadable_pid_file_is_ignored(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.pid"
    path.write_text(content)
    assert read_pid_file(path) is None


def test_missing_pid_file_is_ignored(tmp_path: Path) -> None:
    assert read_pid_file(tmp_path / "none.pid") is None


def test_old_pid_file_without_boot_id_is_read_but_never_trusted(tmp_path: Path) -> None:
    path = tmp_path / "old.pid"
    path.write_text('{"pid": 77}')
    record = read_pid_file(path)
    assert record == PidRecord(pid=77, pgid=77, command="", started_at=0.0)
    table = {77: ProcInfo(77, 1, 77, 5, zombie=False, marked=False)}
    assert not trusted_group(record, table, current_boot="boot")


# --- process table -------------------------------------------------------------------------


def test_parse_stat_handles_parentheses_in_command_name() -> None:
    fields = ["S", "10", "20"] + ["0"] * 16 + ["999", "0"]
    text = "1234 (weird) name (x)) " + " ".join(fields)
    assert parse_stat(text) == ("S", 10, 20, 999)


def _fake_proc(
    root: Path, pid: int, *, ppid: int, pgid: int, start: int, env: dict[str, str], state: str = "S"
) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    fields = [state, str(ppid), str(pgid)] + ["0"] * 16 + [str(start), "0"]
    (d / "stat").write_text(f"{pid} (python) " + " ".join(fields))
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()) + b"\0")


def test_read_proc_table_spots_the_marker(tmp_path: Path) -> None:
    owner = "/repo/data/demo"
    _fake_proc(tmp_path, 10, ppid=1, pgid=10, start=5, env={OWNER_ENV: owner, "A": "1"})
    _fake_proc(tmp_path, 11, ppid=1, pgid=11, start=6, env={OWNER_ENV: "/other/data/demo"})
    _fake_proc(tmp_path, 12, ppid=10, pgid=10, start=7, env={}, state="Z")
    (tmp_path / "self").mkdir()
    table = read_proc_table(owner, tmp_path)
    assert table[10].marked and not table[11].marked
    assert table[12].zombie and table[12].ppid == 10
    assert set(table) == {10, 11, 12}


def test_owned_pids_follows_marker_groups_and_descendants() -> None:
    table = {
        1: ProcInfo(1, 0, 1, 1, zombie=False, marked=False),  # init
        10: ProcInfo(10, 1, 10, 5, zombie=False, marked=True),  # feed server
        20: ProcInfo(20, 1, 20, 6, zombie=False, marked=False),  # standalone (renamed)
        21: ProcInfo(21, 20, 20, 7, zombie=False, marked=False),  # scheduler
        22: ProcInfo(22, 1, 20, 8, zombie=False, marked=False),  # orphaned api-server
        30: ProcInfo(30, 21, 30, 9, zombie=False, marked=False),  # task in its own group
        31: ProcInfo(31, 30, 30, 9, zombie=True, marked=False),  # exited
        40: ProcInfo(40, 1, 40, 9, zombie=False, marked=False),  # unrelated
        50: ProcInfo(50, 1, 50, 9, zombie=False, marked=True),  # ourselves
    }
    assert owned_pids(table, groups={20}, exclude={50}) == {10, 20, 21, 22, 30}
    assert owned_pids(table, groups=set()) == {10, 50}


@pytest.mark.parametrize(
    ("record", "table", "trusted"),
    [
        # leader alive, same start time: ours
        (PidRecord(5, 5, "", 0, "boot", 100), {5: ProcInfo(5, 1, 5, 100, False, False)}, True),
        # pid reused by a process started at another time: not ours
        (PidRecord(5, 5, "", 0, "boot", 100), {5: ProcInfo(5, 1, 5, 999, False, False)}, False),
        # leader exited, orphaned members keep the group id: ours
        (PidRecord(5, 5, "", 0, "boot", 100), {6: ProcInfo(6, 1, 5, 101, False, False)}, True),
        # nothing left of the group: nothing to signal
        (PidRecord(5, 5, "", 0, "boot", 100), {6: ProcInfo(6, 1, 6, 101, False, False)}, False),
        # recorded before a reboot: never trusted
        (PidRecord(5, 5, "", 0, "old", 100), {5: ProcInfo(5, 1, 5, 100, False, False)}, False),
    ],
)
def test_trusted_group(record: PidRecord, table: dict[int, ProcInfo], trusted: bool) -> None:
    assert trusted_group(record, table, current_boot="boot") is trusted


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)


def _sleeper(env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **env_extra}
    return subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)


def test_stop_all_kills_marked_leftover_without_pid_file(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    proc = _sleeper({OWNER_ENV: str(layout.demo)})
    try:
        assert stop_all(layout, grace_s=5) == 1
        assert proc.wait(timeout=5) == -signal.SIGTERM
    finally:
        proc.kill()


def test_stop_all_uses_pid_file_groups_for_renamed_processes(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    proc = _sleeper({})  # no marker visible, like a process that ran setproctitle
    try:
        start = parse_stat(Path(f"/proc/{proc.pid}/stat").read_text())[3]
        record = PidRecord(proc.pid, proc.pid, "sleep", time.time(), boot_id(), start)
        write_pid_file(layout.pid_file("airflow"), record)
        assert stop_all(layout, grace_s=5) == 1
        assert proc.wait(timeout=5) == -signal.SIGTERM
        assert not layout.pid_file("airflow").exists()
    finally:
        proc.kill()


def test_stop_all_with_stale_pid_files_touches_nothing(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    bystander = _sleeper({})
    try:
        stale = PidRecord(bystander.pid, bystander.pid, "airflow", 0.0, "another-boot", 1)
        write_pid_file(layout.pid_file("airflow"), stale)
        layout.pid_file("feed-server").write_text("not json")
        assert stop_all(layout, grace_s=1) == 0
        assert bystander.poll() is None
        assert not layout.pid_file("airflow").exists()
        assert not layout.pid_file("feed-server").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_port_free_and_holder() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_free(port)
        assert port_holder(port) is not None
        assert port_holder(port).startswith(f"pid {os.getpid()}:")
    assert port_free(port)


# --- configuration -------------------------------------------------------------------------


def _parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_merge_airflow_cfg_sets_options_and_generates_secrets(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    cfg = _parse(merge_airflow_cfg(None, airflow_settings(layout, port_ui=8090)))
    assert cfg["core"]["dags_folder"] == str(tmp_path / "dags")
    assert cfg["core"]["load_examples"] == "False"
    assert cfg["core"]["execution_api_server_url"] == "http://127.0.0.1:8090/execution/"
    assert cfg["api"]["port"] == "8090"
    assert cfg["database"]["sql_alchemy_conn"] == f"sqlite:///{tmp_path}/.airflow/airflow.db"
    assert "great_expectations" in cfg["scheduler"]["mp_forkserver_preload"]
    for section, key in SECRET_OPTIONS:
        assert len(cfg[section][key]) >= 16


def test_merge_airflow_cfg_keeps_secrets_and_user_options(tmp_path: Path) -> None:
    settings = airflow_settings(Layout(tmp_path), port_ui=8080)
    first = merge_airflow_cfg(None, settings)
    edited = first + "\n[smtp]\nsmtp_host = mail.example\n"
    second = _parse(merge_airflow_cfg(edited, airflow_settings(Layout(tmp_path), port_ui=9000)))
    before = _parse(first)
    for section, key in SECRET_OPTIONS:
        assert second[section][key] == before[section][key]
    assert second["smtp"]["smtp_host"] == "mail.example"
    assert second["api"]["port"] == "9000"


def test_admin_password_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "pw.json"
    password = ensure_admin_password(path)
    assert len(password) >= 12
    assert ensure_admin_password(path) == password
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{broken")
    assert ensure_admin_password(path) != password


def test_feed_token_is_new_each_time_and_private(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "feed_token"
    first = new_feed_token(path)
    second = new_feed_token(path)
    assert first != second
    assert path.read_text().strip() == second
    assert path.stat().st_mode & 0o777 == 0o600


def test_process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    layout = Layout(tmp_path, venv_bin=tmp_path / "bin")
    env = process_env(layout, port_feed=8799, token="tok")
    assert "AIRFLOW__CORE__EXECUTOR" not in env
    assert env["AIRFLOW_HOME"] == str(tmp_path / ".airflow")
    assert env["CM_WAREHOUSE_URL"] == f"sqlite:///{tmp_path}/data/warehouse.db"
    assert env["CM_FEED_BASE_URL"] == "http://127.0.0.1:8799"
    assert env["CM_FEED_TOKEN"] == "tok"
    assert env["CM_PII_KEY"] == os.environ["CM_PII_KEY"]  # an operator's key wins
    monkeypatch.delenv("CM_PII_KEY")
    generated = process_env(layout, port_feed=8799, token="tok")["CM_PII_KEY"]
    assert len(generated) >= 32 and (layout.pii_key_file.stat().st_mode & 0o777) == 0o600
    assert process_env(layout, port_feed=8799, token="tok")["CM_PII_KEY"] == generated
    assert env["CM_DATA_DIR"] == str(tmp_path / "data")
    assert env["GX_ANALYTICS_ENABLED"] == "false"
    assert env[OWNER_ENV] == str(tmp_path / "data" / "demo")
    assert env["PATH"].startswith(str(tmp_path / "bin") + os.pathsep)


# --- periods and backfill dates ------------------------------------------------------------


def _logical_date(period: Period) -> datetime:
    """retail_monthly's run for ``period`` starts its interval on the 15th, 06:00 Shanghai."""
    return datetime(period.year, period.month, 15, 6, tzinfo=SHANGHAI)


def test_backfill_window_covers_whole_months_in_shanghai() -> None:
    start, end = backfill_window(Period(2024, 1), Period(2026, 10))
    assert start.isoformat() == "2024-01-01T00:00:00+08:00"
    assert end.isoformat() == "2026-10-31T23:59:59+08:00"


def test_backfill_window_selects_exactly_one_run_per_period() -> None:
    first, last = Period(2024, 1), Period(2026, 10)
    start, end = backfill_window(first, last)
    candidates = [_logical_date(first.shift(i)) for i in range(-3, 40)]
    inside = [d for d in candidates if start <= d <= end]
    assert [period_of_logical_date(d) for d in inside] == period_range(first, last)
    assert len(inside) == 34


def test_backfill_window_rejects_reversed_range() -> None:
    with pytest.raises(DemoError):
        backfill_window(Period(2025, 2), Period(2025, 1))


@pytest.mark.parametrize(
    ("value", "period"),
    [
        ("2024-03-14T22:00:00Z", Period(2024, 3)),  # 15 March 06:00 in Shanghai
        ("2024-03-14T22:00:00+00:00", Period(2024, 3)),
        ("2024-01-31T17:00:00+00:00", Period(2024, 2)),  # already 1 February in Shanghai
        (datetime(2025, 12, 14, 22, tzinfo=UTC), Period(2025, 12)),
    ],
)
def test_period_of_logical_date(value: str | datetime, period: Period) -> None:
    assert period_of_logical_date(value) == period


def test_period_of_naive_logical_date_is_an_error() -> None:
    with pytest.raises(ValueError):
        period_of_logical_date("2024-03-15T06:00:00")


def test_parse_period_arg() -> None:
    assert parse_period_arg("2024-01") == Period(2024, 1)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_period_arg("2024-13")


def test_cli_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args([])
    assert args.period_from == Period(2024, 1) and args.period_to is None
    assert (args.port_ui, args.port_feed, args.timeout_min) == (8080, 8765, None)
    assert resolved_feeds(args) == tuple(available_feeds())
    assert timeout_minutes(args) == 10.0 * len(available_feeds())
    assert args.recent == DEFAULT_RECENT == 3
    assert not args.stop and not args.json
    args = parser.parse_args(["--stop", "--from", "2025-02", "--to", "2025-06", "--json"])
    assert args.stop and args.json and args.period_to == Period(2025, 6)


def test_default_to_is_last_full_month_in_shanghai() -> None:
    # 31 Dec 2025 20:00 UTC is already 1 Jan 2026 in Shanghai.
    now = datetime(2025, 12, 31, 20, tzinfo=UTC)
    assert today_shanghai(now).isoformat() == "2026-01-01"


@pytest.mark.airflow
def test_backfill_window_matches_airflow_timetable() -> None:
    """Airflow's own timetable yields exactly one run per period inside the window."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable("0 6 15 * *", timezone="Asia/Shanghai")
    first, last = Period(2024, 1), Period(2026, 10)
    start, end = backfill_window(first, last)
    restriction = TimeRestriction(start, end, catchup=True)
    periods, info = [], None
    while True:
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
        if info is None:
            break
        periods.append(period_of_logical_date(info.logical_date))
    assert periods == period_range(first, last)


# --- run tracking --------------------------------------------------------------------------


def _run(period: Period, state: str, run_after: str = "2026-01-01T00:00:00Z") -> dict:
    logical = _logical_date(period).astimezone(UTC).isoformat()
    return {
        "logical_date": logical,
        "state": state,
        "run_after": run_after,
        "dag_run_id": f"backfill__{logical}",
    }


def test_tally_runs_counts_states_and_missing_periods() -> None:
    expected = [Period(2024, m) for m in range(1, 6)]
    runs = [
        _run(Period(2024, 1), "success"),
        _run(Period(2024, 2), "failed"),
        _run(Period(2024, 3), "running"),
        _run(Period(2024, 4), "queued"),
        _run(Period(2023, 12), "success"),  # outside the expected periods
    ]
    tally = tally_runs(expected, runs)
    assert tally.finished == 2 and tally.missing == [Period(2024, 5)] and not tally.done
    assert [r["state"] for r in tally.failed_runs] == ["failed"]
    line = progress_line(tally, 65)
    assert line == "已完成 2/5 期 · 运行中 1 · 排队 2 · 失败 1 · 已用时 1:05"


def test_tally_runs_keeps_the_latest_run_of_a_period() -> None:
    period = Period(2024, 3)
    runs = [_run(period, "success", "2026-01-02T00:00:00Z"), _run(period, "failed", "2026-01-01")]
    tally = tally_runs([period], runs)
    assert tally.done and tally.count("success") == 1


def test_task_log_path() -> None:
    ti = {
        "dag_id": "retail_monthly",
        "dag_run_id": "backfill__x",
        "task_id": "validate",
        "map_index": -1,
        "try_number": 2,
    }
    assert task_log_path(Path("/logs"), ti) == Path(
        "/logs/dag_id=retail_monthly/run_id=backfill__x/task_id=validate/attempt=2.log"
    )


@pytest.mark.parametrize(
    ("health", "ready"),
    [
        (None, False),
        (
            {
                "metadatabase": {"status": "healthy"},
                "scheduler": {"status": "healthy"},
                "dag_processor": {"status": "healthy"},
                "triggerer": {"status": None},
            },
            True,
        ),
        (
            {
                "metadatabase": {"status": "healthy"},
                "scheduler": {"status": "unhealthy"},
                "dag_processor": {"status": "healthy"},
            },
            False,
        ),
    ],
)
def test_airflow_ready(health: dict | None, ready: bool) -> None:
    assert airflow_ready(health) is ready


# --- summary -------------------------------------------------------------------------------

SUMMARY = {
    "feed": "retail_monthly",
    "periods_loaded": 33,
    "first_period": "2024-02",
    "last_period": "2026-10",
    "rows_loaded": 4125,
    "rows_quarantined": 3,
    "verdicts": {"passed": 31, "warning": 2},
    "revised_periods": ["2025-03"],
    "rejected_batches": [],
    "latest_snapshot": [
        {
            "kpi_id": "retail_total",
            "name": "社会消费品零售总额",
            "period": "2026-10",
            "unit": "万元",
            "actual_month": 123456.78,
            "actual_ytd": 1234567.8,
            "yoy_month_pct": 5.12,
            "yoy_ytd_pct": None,
            "validation_state": "passed",
            "computed_at": "2026-11-27",
        },
    ],
}


def _render(summary: dict | None, tally: RunTally | None = None) -> str:
    return render_summary(
        {"retail_monthly": summary},
        tallies={"retail_monthly": tally} if tally is not None else {},
        ui_url="http://127.0.0.1:8080",
        password="s3cret",
        password_file=Path("/repo/.airflow/pw.json"),
        logs_dir=Path("/repo/data/demo"),
        elapsed_s=321,
    )


def test_render_summary_shows_outcome_login_and_snapshot() -> None:
    tally = tally_runs([Period(2024, 1)], [_run(Period(2024, 1), "success")])
    text = _render(SUMMARY, tally)
    assert "成功 1 · 失败 0" in text
    assert "已入库期数 Periods loaded: 33 (2024-02 … 2026-10)" in text
    assert "入库行数 Rows loaded: 4125 · 隔离 Quarantined: 3" in text
    assert "通过 passed 31 · 警告 warning 2" in text
    assert "修订期别 Revised periods: 2025-03" in text
    assert "最新快照 Latest snapshot: 2026-10 (单位 万元)" in text
    assert "123,456.8" in text and "社会消费品零售总额" in text
    assert "http://127.0.0.1:8080" in text and "admin" in text and "s3cret" in text
    assert "make stop" in text and "5:21" in text


def test_render_summary_without_warehouse_summary_and_unknown_keys() -> None:
    assert "仓库摘要 Warehouse summary: 不可用" in _render(None)
    text = _render({"periods_loaded": 0, "extra_key": "x"})
    assert "最新快照 Latest snapshot: 无" in text and "extra_key: x" in text


def test_render_failures_lists_logs() -> None:
    failures = [
        {
            "period": "2024-03",
            "state": "failed",
            "run_id": "r1",
            "tasks": [{"task_id": "validate", "state": "failed", "log": "/logs/a.log"}],
        },
        {"period": "2024-04", "state": "missing", "tasks": []},
    ]
    text = render_failures(failures, "http://127.0.0.1:8080")
    assert "2024-03: failed" in text and "/dags/retail_monthly/runs/r1" in text
    assert "validate: failed · 日志 /logs/a.log" in text and "2024-04: missing" in text


def test_format_duration() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(timedelta(minutes=9, seconds=59).total_seconds()) == "9:59"


def test_runs_to_rerun() -> None:
    runs = [
        _run(Period(2024, m), state)
        for m, state in [(1, "success"), (2, "failed"), (3, "running"), (4, "queued")]
    ]
    assert [r["state"] for r in runs_to_rerun(runs, rerun_all=False)] == ["failed"]
    assert len(runs_to_rerun(runs, rerun_all=True)) == 4


@pytest.mark.parametrize(
    ("status", "body", "retry"),
    [
        (503, "Database is locked. Backfill creation is not supported on SQLite", True),
        (500, '{"detail":{"reason":"Database error","statement":"hidden"}}', True),
        (409, "database is locked", True),
        (409, "There is already a running backfill for dag retail_monthly", False),
        (404, "not found", False),
        (500, "Internal Server Error", False),
    ],
)
def test_is_lock_refusal(status: int, body: str, retry: bool) -> None:
    assert is_lock_refusal(status, body) is retry


ALL = ["retail_monthly", "complaints_12315", "ecommerce_monthly", "employment_monthly"]


def test_parse_feeds() -> None:
    assert parse_feeds("retail_monthly", ALL) == ("retail_monthly",)
    assert parse_feeds(" ecommerce_monthly, retail_monthly,ecommerce_monthly ", ALL) == (
        "ecommerce_monthly",
        "retail_monthly",
    )
    assert parse_feeds("all", ALL) == tuple(ALL)
    with pytest.raises(argparse.ArgumentTypeError, match="nope"):
        parse_feeds("retail_monthly,nope", ALL)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_feeds(" , ", ALL)


def test_available_feeds_start_with_the_default_and_include_every_dag() -> None:
    feeds = available_feeds()
    assert feeds[0] == DAG_ID
    dags = {p.stem for p in (REPO_DIR / "dags").glob("*.py")}
    assert set(feeds) <= dags and "work_ledgers" in feeds


def test_cli_feeds_option_and_timeout_per_feed() -> None:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(["--feeds", "all"])
    assert args.feeds == tuple(available_feeds())
    assert timeout_minutes(args) == 10.0 * len(args.feeds)
    args = parser.parse_args(["--feeds", "all", "--timeout-min", "7"])
    assert timeout_minutes(args) == 7.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--feeds", "unknown_feed"])


def test_backfill_runs_in_flight_share_the_budget() -> None:
    assert backfill_runs_in_flight("retail_monthly", ["retail_monthly"], file_feeds=[]) == 4
    five = [*ALL, "work_ledgers"]
    assert backfill_runs_in_flight("retail_monthly", five, file_feeds=["work_ledgers"]) == 1
    two = ["retail_monthly", "ecommerce_monthly"]
    assert backfill_runs_in_flight("ecommerce_monthly", two, file_feeds=[]) == 2
    assert (
        backfill_runs_in_flight("work_ledgers", ["work_ledgers"], file_feeds=["work_ledgers"]) == 1
    )


def test_backfill_body_names_the_dag() -> None:
    start, end = backfill_window(Period(2026, 7), Period(2026, 10))
    body = backfill_body("work_ledgers", start, end, max_active_runs=1)
    assert body["dag_id"] == "work_ledgers" and body["max_active_runs"] == 1
    assert body["reprocess_behavior"] == "none"


def test_progress_line_all_shows_each_dag_and_the_total() -> None:
    periods = [Period(2024, 1), Period(2024, 2)]
    tallies = {
        "retail_monthly": tally_runs(periods, [_run(p, "success") for p in periods]),
        "work_ledgers": tally_runs(periods, [_run(periods[0], "running")]),
    }
    line = progress_line_all(tallies, 65)
    assert line.startswith("retail_monthly 2/2 · work_ledgers 0/2 | 已完成 2/4 期")
    assert "运行中 1" in line and "排队 1" in line and "失败 0" in line and "1:05" in line
    single = {"retail_monthly": tallies["retail_monthly"]}
    assert progress_line_all(single, 65) == progress_line(single["retail_monthly"], 65)


def test_render_summary_has_a_section_per_feed() -> None:
    period = Period(2024, 1)
    tallies = {
        "retail_monthly": tally_runs([period], [_run(period, "success")]),
        "work_ledgers": tally_runs([period], [_run(period, "failed")]),
    }
    ledgers = {
        "periods_loaded": 4,
        "rows_loaded": 120,
        "rows_quarantined": 2,
        "verdicts": {"warning": 4},
    }
    text = render_summary(
        {"retail_monthly": SUMMARY, "work_ledgers": ledgers},
        tallies=tallies,
        ui_url="http://127.0.0.1:8080",
        password="s3cret",
        password_file=Path("/repo/.airflow/pw.json"),
        logs_dir=Path("/repo/data/demo"),
        elapsed_s=90,
    )
    assert "全部数据源 All feeds (2): 成功 1 · 失败 1 · 未完成 0 (共 2 次运行)" in text
    retail, ledger = text.split("--- retail_monthly ---")[1].split("--- work_ledgers ---")
    assert "已入库期数 Periods loaded: 33" in retail and "成功 1 · 失败 0" in retail
    assert "已入库期数 Periods loaded: 4" in ledger and "隔离 Quarantined: 2" in ledger
    assert "警告 warning 4" in ledger and "成功 0 · 失败 1" in ledger
    assert text.count("Airflow 界面 UI") == 1 and "make stop" in text
    assert text.count("最新快照 Latest snapshot: 2026-10") == 1  # shown once, after the feeds
    assert text.index("--- 全部指标") > text.index("--- work_ledgers ---")


def test_render_summary_single_feed_has_no_total_line() -> None:
    assert "全部数据源" not in _render(SUMMARY)


def test_render_failures_names_the_dag() -> None:
    failures = [
        {
            "dag_id": "work_ledgers",
            "period": "2024-03",
            "state": "failed",
            "run_id": "r9",
            "tasks": [],
        }
    ]
    text = render_failures(failures, "http://127.0.0.1:8080")
    assert "work_ledgers 2024-03: failed" in text and "/dags/work_ledgers/runs/r9" in text


def test_drop_sample_files_skips_files_already_processed(tmp_path: Path) -> None:
    incoming, staging = tmp_path / "incoming", tmp_path / "demo" / "staging"
    dropped, known = drop_sample_files(
        "work_ledgers", incoming, staging, Period(2026, 9), Period(2026, 10)
    )
    folder = incoming / "work_ledgers"
    files = sorted(folder.glob("*.xlsx"))
    assert dropped == len(files) > 0 and known == 0 and not staging.exists()
    assert {f.name[:7] for f in files} == {"2026-09", "2026-10"}
    # Pretend a run took in one file: it is not dropped again.
    import hashlib
    import json

    taken = files[0]
    processed = folder / "_processed" / "2026-09"
    processed.mkdir(parents=True)
    sha = hashlib.sha256(taken.read_bytes()).hexdigest()
    (processed / "00001-x.json").write_text(json.dumps({"sha256": sha}), encoding="utf-8")
    for f in files:
        f.unlink()
    dropped2, known2 = drop_sample_files(
        "work_ledgers", incoming, staging, Period(2026, 9), Period(2026, 10)
    )
    assert (dropped2, known2) == (dropped - 1, 1) and not (folder / taken.name).exists()
    with pytest.raises(DemoError):
        drop_sample_files("retail_monthly", incoming, staging, Period(2026, 9), Period(2026, 9))


def test_recent_periods_run_one_by_one_and_the_rest_catch_up() -> None:
    first, last = Period(2024, 1), Period(2026, 10)
    assert split_range(first, last, 3) == (
        (Period(2024, 1), Period(2026, 7)),
        (Period(2026, 8), Period(2026, 10)),
    )
    assert split_range(first, last, None) == (None, (first, last))
    # a range no longer than --recent needs no catch-up
    assert split_range(Period(2026, 9), last, 3) == (None, (Period(2026, 9), last))
    assert split_range(Period(2026, 8), last, 3) == (None, (Period(2026, 8), last))
    assert split_range(Period(2026, 7), last, 3) == (
        (Period(2026, 7), Period(2026, 7)),
        (Period(2026, 8), last),
    )


def test_parse_recent() -> None:
    assert parse_recent("5") == 5 and parse_recent("ALL") is None
    for bad in ("0", "-2", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_recent(bad)


def test_catchup_progress_labels_mapped_tasks_by_feed() -> None:
    feeds = ["retail_monthly", "work_ledgers"]
    assert catchup_progress([{"task_id": "catch_up", "map_index": -1}], feeds) == {}
    tis = [
        {"task_id": "plan", "map_index": -1, "state": "success"},
        {
            "task_id": "catch_up",
            "map_index": 0,
            "rendered_map_index": "retail_monthly",
            "state": "success",
        },
        {"task_id": "catch_up", "map_index": 1, "rendered_map_index": None, "state": None},
    ]
    assert catchup_progress(tis, feeds) == {
        "retail_monthly": "success",
        "work_ledgers": "queued",
    }


def test_render_summary_reports_the_catch_up_run() -> None:
    text = render_summary(
        {},
        tallies={},
        ui_url="http://127.0.0.1:8080",
        password="pw",
        password_file=Path("/tmp/pw"),
        logs_dir=Path("/tmp/logs"),
        elapsed_s=61,
        catchup={
            "state": "success",
            "range": ["2024-01", "2026-07"],
            "feeds": {"retail_monthly": "success", "work_ledgers": "failed"},
            "ui": "http://127.0.0.1:8080/dags/feed_catchup/runs/r1",
        },
        report={
            "state": "success",
            "period": "2026-10",
            "html": "/data/reports/2026-10.html",
            "ui": "http://127.0.0.1:8080/cm-reports/",
        },
    )
    assert "历史补数 Catch-up 2024-01 … 2026-07 (feed_catchup): success · 数据源成功 1/2" in text
    assert "http://127.0.0.1:8080/dags/feed_catchup/runs/r1" in text
    assert "月报 Monthly report 2026-10 (indicator_snapshots): success" in text
    assert "/data/reports/2026-10.html · 界面 http://127.0.0.1:8080/cm-reports/" in text


def test_feed_command_passes_a_token_starting_with_a_dash_as_one_argument() -> None:
    import subprocess

    argv = feed_command(8765, "-abc")
    assert "--token=-abc" in argv
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
