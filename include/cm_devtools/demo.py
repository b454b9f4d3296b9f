"""`make demo` / `make stop`: the whole platform on one machine, driven through Airflow.

Why this module exists: reviewers and bureau operators need a single command that brings up
the sample feed server and Airflow (``airflow standalone``: SQLite metadata, LocalExecutor,
embedded SQLite warehouse), runs every sample period *through the scheduler* - one Airflow
backfill, so each period is an ordinary DAG run in the UI - and leaves everything running for
browsing. ``demo --stop`` ends it; a second ``demo`` restarts cleanly without it.

Decisions, measured on the 2-core reference machine (34 monthly runs, 2024-01 .. 2026-10):

* Total about 5 minutes: ~50 s until Airflow is healthy, then ~4 minutes of runs. Two task
  slots (``[core] parallelism``) and four backfill runs in flight; four slots were slower
  (tasks fight for the CPU with the scheduler and the API server).
* Great Expectations takes 10-17 s to import here and the validate task needs it. The
  scheduler's LocalExecutor uses the ``forkserver`` start method with GX and the other heavy
  libraries preloaded (``[scheduler] mp_forkserver_preload``, Airflow >= 3.3): workers fork
  from the preloaded server and task processes fork from the workers, so validate takes
  ~3 s instead of ~14 s and the import is paid once per demo.
* Airflow is configured in ``<repo>/.airflow/airflow.cfg`` (not only environment variables),
  so ``AIRFLOW_HOME=.airflow airflow ...`` by hand sees the same setup. Its secrets (fernet
  key, JWT secret, API secret) are generated once and kept: all components must share them.
* The admin password is written by us into the simple auth manager's password file and kept
  across demos, so the summary can always print the login.
* Every process started here carries ``CM_DEMO_OWNER=<data/demo>`` in its environment.
  Stopping signals the process groups from the pid files, every process with the marker and
  their descendants: leftovers whose pid file was lost or is stale are found, and nothing
  else is touched.
* Every feed by default (``--feeds a,b`` limits them). The history up to the last
  ``--recent`` periods (3) loads in one ``feed_catchup`` run, one task per feed; the recent
  periods go through each feed's own DAG by backfill (``--recent all``, ``make demo-full``:
  every period that way); then one ``indicator_snapshots`` run writes the monthly report.
  The four backfill runs in flight are shared between the DAGs (at least one each), file-drop
  feeds run one period at a time (every run takes files in from the same folder), and their
  sample files (``cm ledger-samples``) are dropped into the incoming folder before Airflow
  starts - except files an earlier demo already took in. ``--timeout-min`` defaults to 10
  minutes per feed.
* SQLite has one writer; the scheduler writes all the time. Requests that Airflow refuses
  because of the lock are retried, runs are re-queued one at a time (a backfill that
  "reprocesses" existing runs does it in one long transaction that SQLite refuses), and the
  DAG is paused while runs are being queued.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from consumption_monitor.common.periods import BUREAU_TZ as SHANGHAI
from consumption_monitor.common.periods import Period, PeriodError, bureau_today, last_full_month
from consumption_monitor.common.terminal import pad

DAG_ID = "retail_monthly"  # listed first; the summary's indicators come from it
DEFAULT_FEEDS = ("all",)  # resolved by parse_feeds: every feed with a spec
CATCHUP_DAG_ID = "feed_catchup"
SNAPSHOT_DAG_ID = "indicator_snapshots"
#: periods at the end of the range that go through the per-period DAGs; earlier ones are
#: loaded by one feed_catchup run (see catchup.py for why)
DEFAULT_RECENT = 3
ADMIN_USER = "admin"
OWNER_ENV = "CM_DEMO_OWNER"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
# Concurrent task processes. Two cores: more parallel tasks only add contention (measured).
PARALLELISM = 2
# Backfill runs in flight at once: enough to keep PARALLELISM task slots busy while a run
# waits for the scheduler to queue its next task.
BACKFILL_MAX_ACTIVE_RUNS = 4
# Imported once in the executor's fork server so task processes inherit them (see the module
# docstring). Third-party libraries and Airflow's task runtime only: preloading project code
# would make tasks run stale code after an edit until Airflow restarts.
PRELOAD_MODULES = (
    "airflow.executors.local_executor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.serialization.serialized_objects",
    "great_expectations",
    "pandas",
    "sqlalchemy",
    "requests",
)
SERVICES = ("airflow", "feed-server")
MISSING_RUN_GRACE_S = 45.0
REPO_DIR = Path(__file__).resolve().parents[2]  # include/cm_devtools/demo.py -> repo


class DemoError(RuntimeError):
    """A demo step failed; the message is shown to the operator as is."""


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Where the demo keeps its state; everything lives under the (git-ignored) repo dirs."""

    repo: Path
    venv_bin: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @property
    def airflow_home(self) -> Path:
        return self.repo / ".airflow"

    @property
    def dags(self) -> Path:
        return self.repo / "dags"

    @property
    def plugins(self) -> Path:
        return self.repo / "plugins"

    @property
    def data(self) -> Path:
        return self.repo / "data"

    @property
    def demo(self) -> Path:
        return self.data / "demo"

    @property
    def warehouse_path(self) -> Path:
        return self.data / "warehouse.db"

    @property
    def warehouse_url(self) -> str:
        return f"sqlite:///{self.warehouse_path}"

    @property
    def airflow_cfg(self) -> Path:
        return self.airflow_home / "airflow.cfg"

    @property
    def password_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json"

    @property
    def token_file(self) -> Path:
        return self.demo / "feed_token"

    @property
    def pii_key_file(self) -> Path:
        return self.demo / "pii_key"

    @property
    def task_logs(self) -> Path:
        return self.airflow_home / "logs"

    def pid_file(self, service: str) -> Path:
        return self.demo / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.demo / f"{service}.log"


# --------------------------------------------------------------------------- processes on disk


@dataclass(frozen=True)
class PidRecord:
    """What we remember about a background process: enough to stop its whole group.

    ``boot_id`` and ``starttime`` (clock ticks after boot, from /proc) tell a live process
    from an unrelated one that got the same pid after a reboot or a long time.
    """

    pid: int
    pgid: int
    command: str
    started_at: float
    boot_id: str = ""
    starttime: int = 0


def write_pid_file(path: Path, record: PidRecord) -> None:
    """Write atomically so a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``; None when missing or unreadable (garbage never blocks a demo)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(
            pid=int(raw["pid"]),
            pgid=int(raw.get("pgid", raw["pid"])),
            command=str(raw.get("command", "")),
            started_at=float(raw.get("started_at", 0.0)),
            boot_id=str(raw.get("boot_id", "")),
            starttime=int(raw.get("starttime", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class ProcInfo:
    """One row of the process table, as far as stopping the demo needs it."""

    pid: int
    ppid: int
    pgid: int
    starttime: int
    zombie: bool
    marked: bool  # carries OWNER_ENV=<this checkout's data/demo>


def parse_stat(text: str) -> tuple[str, int, int, int]:
    """(state, ppid, pgid, starttime) from /proc/<pid>/stat.

    The command name in parentheses may contain spaces or ')', so fields are counted from
    the last ')'.
    """
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def boot_id(proc_root: Path = Path("/proc")) -> str:
    try:
        return (proc_root / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def read_proc_table(owner: str, proc_root: Path = Path("/proc")) -> dict[int, ProcInfo]:
    """Every process we may inspect, with our marker looked up in its environment.

    Processes that rename themselves (setproctitle: Airflow's API server, executor workers)
    overwrite the memory /proc/<pid>/environ shows, so the marker alone cannot find them:
    process groups and parentage cover those (see ``owned_pids``).
    """
    marker = f"{OWNER_ENV}={owner}".encode()
    table: dict[int, ProcInfo] = {}
    try:
        entries = list(proc_root.iterdir())
    except OSError:
        return table
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            state, ppid, pgid, starttime = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
        try:
            marked = marker in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            marked = False
        pid = int(entry.name)
        table[pid] = ProcInfo(pid, ppid, pgid, starttime, state == "Z", marked)
    return table


def trusted_group(record: PidRecord, table: Mapping[int, ProcInfo], current_boot: str) -> bool:
    """Whether the process group in a pid file is still ours (and safe to signal).

    Not after a reboot; not if its leader's pid now belongs to a process started at another
    time. A group whose leader exited but whose members live on keeps its id reserved by
    the kernel, so those members are still ours.
    """
    if not record.boot_id or record.boot_id != current_boot:
        return False
    leader = table.get(record.pid)
    if leader is not None and not leader.zombie:
        return leader.starttime == record.starttime
    return any(p.pgid == record.pgid and not p.zombie for p in table.values())


def owned_pids(
    table: Mapping[int, ProcInfo], groups: Iterable[int], exclude: Iterable[int] = ()
) -> set[int]:
    """Live processes that are ours: marked, in one of our groups, or descended from those."""
    group_set = set(groups)
    skip = set(exclude)
    owned = {
        p.pid
        for p in table.values()
        if not p.zombie and p.pid not in skip and (p.marked or p.pgid in group_set)
    }
    changed = True
    while changed:  # add descendants (task processes move to groups of their own)
        changed = False
        for p in table.values():
            if p.pid not in owned and not p.zombie and p.pid not in skip and p.ppid in owned:
                owned.add(p.pid)
                changed = True
    return owned


def pid_alive(pid: int, proc_root: Path = Path("/proc")) -> bool:
    """True for a running process; zombies (exited, not yet reaped) count as dead."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return parse_stat((proc_root / str(pid) / "stat").read_text())[0] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _signal(pid: int, sig: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            if pid != os.getpgrp():  # never our own group
                os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _current_targets(layout: Layout, records: Iterable[PidRecord]) -> tuple[set[int], set[int]]:
    table = read_proc_table(str(layout.demo))
    current_boot = boot_id()
    groups = {r.pgid for r in records if trusted_group(r, table, current_boot)}
    me = os.getpid()
    return groups, owned_pids(table, groups, exclude=(me, os.getppid()))


def stop_all(layout: Layout, *, grace_s: float = 20.0, services: Iterable[str] = SERVICES) -> int:
    """Stop every demo process of this checkout; returns how many were running.

    ``services`` names the pid files to read (the Celery topology has more components).

    SIGTERM first (Airflow's components shut down cleanly on it) to the process groups from
    the pid files and to every other process that is ours; whatever is left after
    ``grace_s`` gets SIGKILL. Pid files are removed, stale or not.
    """
    services = tuple(services)
    records = [r for s in services if (r := read_pid_file(layout.pid_file(s))) is not None]
    groups, targets = _current_targets(layout, records)
    seen = set(targets)
    for pgid in groups:
        _signal(pgid, signal.SIGTERM, group=True)
    for pid in targets:
        _signal(pid, signal.SIGTERM, group=False)
    deadline = time.monotonic() + grace_s
    while True:
        groups, more = _current_targets(layout, records)
        alive = {pid for pid in seen if pid_alive(pid)} | more
        seen |= more
        if not alive:
            break
        if time.monotonic() > deadline:
            for pid in alive:
                _signal(pid, signal.SIGKILL, group=False)
            time.sleep(0.5)
            break
        for pid in more - targets:  # appeared while stopping (e.g. a task just forked)
            _signal(pid, signal.SIGTERM, group=False)
        targets |= more
        time.sleep(0.3)
    for service in services:
        layout.pid_file(service).unlink(missing_ok=True)
    return len(seen)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now (SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int, proc_root: Path = Path("/proc")) -> str | None:
    """'pid N: command' of the process listening on ``port``, for a helpful error message."""
    inodes: set[str] = set()
    for name in ("net/tcp", "net/tcp6"):
        try:
            rows = (proc_root / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return None
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    cmd = (
                        (entry / "cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode(errors="replace")
                    )
                    return f"pid {entry.name}: {cmd.strip()[:120]}"
    return None


# --------------------------------------------------------------------------- configuration


def airflow_settings(layout: Layout, *, port_ui: int) -> dict[str, dict[str, str]]:
    """The airflow.cfg options the demo owns; everything else keeps Airflow's defaults."""
    return {
        "core": {
            "dags_folder": str(layout.dags),
            "plugins_folder": str(layout.plugins),
            "load_examples": "False",
            "executor": "LocalExecutor",
            "parallelism": str(PARALLELISM),
            "auth_manager": SIMPLE_AUTH_MANAGER,
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(layout.password_file),
            # Task processes reach the API server here (default assumes port 8080).
            "execution_api_server_url": f"http://127.0.0.1:{port_ui}/execution/",
        },
        "database": {
            "sql_alchemy_conn": f"sqlite:///{layout.airflow_home / 'airflow.db'}",
        },
        "api": {"host": "127.0.0.1", "port": str(port_ui), "workers": "1"},
        "scheduler": {
            "mp_start_method": "forkserver",
            "mp_forkserver_preload": ",".join(PRELOAD_MODULES),
            # A restarted demo must not wait the default 5 minutes for tasks that were
            # running when the previous scheduler was stopped.
            "task_instance_heartbeat_timeout": "60",
            "orphaned_tasks_check_interval": "30",
        },
        "dag_processor": {"parsing_processes": "1"},
    }


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _random_b64() -> str:
    return base64.b64encode(os.urandom(16)).decode()


SECRET_OPTIONS: dict[tuple[str, str], Callable[[], str]] = {
    ("core", "fernet_key"): _fernet_key,
    ("api_auth", "jwt_secret"): _random_b64,
    ("api", "secret_key"): _random_b64,
}


def merge_airflow_cfg(existing: str | None, settings: Mapping[str, Mapping[str, str]]) -> str:
    """airflow.cfg text with ``settings`` applied over ``existing``.

    Options we do not manage are kept (a user's own tweaks survive a demo); secrets are
    generated only when absent, because changing them invalidates tokens and encrypted values
    of components or connections created earlier.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep case
    if existing:
        parser.read_string(existing)
    for section, options in settings.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, value)
    for (section, key), make in SECRET_OPTIONS.items():
        if not parser.has_section(section):
            parser.add_section(section)
        if not parser.get(section, key, fallback="").strip():
            parser.set(section, key, make())
    out = io.StringIO()
    out.write("# Written by `python -m consumption_monitor demo`; demo-managed options are\n")
    out.write("# overwritten on every demo, other options and the secrets are kept.\n")
    parser.write(out)
    return out.getvalue()


def write_private(path: Path, text: str) -> None:
    """Write a file only the owner can read (tokens, passwords, Airflow secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def ensure_admin_password(path: Path) -> str:
    """The admin password, generated on first use and kept so operators can reuse it."""
    passwords: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        if isinstance(loaded, dict):
            passwords = {str(k): str(v) for k, v in loaded.items()}
    if not passwords.get(ADMIN_USER):
        passwords[ADMIN_USER] = secrets.token_urlsafe(12)
    write_private(path, json.dumps(passwords) + "\n")
    return passwords[ADMIN_USER]


def new_feed_token(path: Path) -> str:
    """A fresh bearer token for this demo's feed server, stored with mode 600."""
    token = secrets.token_urlsafe(24)
    write_private(path, token + "\n")
    return token


def demo_pii_key(path: Path) -> str:
    """The demo's pseudonymisation key (trade-in feed): generated once, kept with mode 600
    so pseudonyms stay the same across demo runs. Production sets CM_PII_KEY or cm_pii."""
    if path.exists() and path.read_text(encoding="utf-8").strip():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    write_private(path, key + "\n")
    return key


def process_env(layout: Layout, *, port_feed: int, token: str) -> dict[str, str]:
    """Environment of every background process: Airflow config location plus the CM_* contract."""
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("AIRFLOW__")]:
        del env[key]  # airflow.cfg is the single source of the demo's Airflow settings
    env.update(
        {
            "AIRFLOW_HOME": str(layout.airflow_home),
            "AIRFLOW_CONFIG": str(layout.airflow_cfg),
            "CM_WAREHOUSE_URL": layout.warehouse_url,
            "CM_FEED_BASE_URL": f"http://127.0.0.1:{port_feed}",
            "CM_FEED_TOKEN": token,
            "CM_PII_KEY": env.get("CM_PII_KEY") or demo_pii_key(layout.pii_key_file),
            "CM_DATA_DIR": str(layout.data),
            "GX_ANALYTICS_ENABLED": "false",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{layout.venv_bin}{os.pathsep}{env.get('PATH', '')}",
            OWNER_ENV: str(layout.demo),
        }
    )
    return env


# --------------------------------------------------------------------------- feeds


def available_feeds() -> list[str]:
    """Every feed with a spec (and a DAG of the same id): the default feed first."""
    from consumption_monitor.feeds.spec import list_feeds

    names = list_feeds()
    return sorted(names, key=lambda n: (n != DAG_ID, n))


def parse_feeds(text: str, available: Iterable[str] | None = None) -> tuple[str, ...]:
    """``--feeds`` value: 'all' or comma-separated DAG ids, de-duplicated in given order."""
    known = list(available if available is not None else available_feeds())
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    if not wanted:
        raise argparse.ArgumentTypeError("--feeds 不能为空 (例如 retail_monthly 或 all)")
    if "all" in wanted:
        return tuple(known)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"未知的数据源 unknown feed(s): {', '.join(unknown)}；可选: all, {', '.join(known)}"
        )
    return tuple(dict.fromkeys(wanted))


def backfill_runs_in_flight(dag_id: str, feeds: Iterable[str], *, file_feeds: Iterable[str]) -> int:
    """Backfill ``max_active_runs`` of one DAG: the demo's budget shared by its DAGs.

    File-drop feeds get one run at a time: every run takes files in from the same folder.
    """
    if dag_id in set(file_feeds):
        return 1
    return max(1, BACKFILL_MAX_ACTIVE_RUNS // max(1, len(list(feeds))))


def file_drop_feeds(feeds: Iterable[str]) -> list[str]:
    """The feeds among ``feeds`` whose source is a file drop (sample files must be dropped)."""
    from consumption_monitor.feeds.spec import load_feed

    return [name for name in feeds if load_feed(name).source_kind == "file"]


def drop_sample_files(
    feed: str, incoming_root: Path, staging: Path, first: Period, last: Period
) -> tuple[int, int]:
    """Drop the feed's sample files for ``first`` .. ``last`` into its incoming folder.

    Files whose bytes were already taken in by an earlier demo (same sha256 in
    ``_processed``) are not dropped again, so a second demo does not fill ``_duplicates``.
    Files are written to ``staging`` first and moved in whole (a run never sees half a file).
    Returns (dropped, already processed).
    """
    import hashlib
    import shutil

    from cm_devtools import ledger_samples as samples
    from consumption_monitor.feeds.sources.file_drop import PROCESSED, drop_dir
    from consumption_monitor.feeds.spec import load_feed

    spec = load_feed(feed)
    if feed != samples.FEED:
        raise DemoError(f"没有 {feed} 的样例文件生成器 (no sample files for this file feed)")
    folder = drop_dir(spec, incoming_root)
    known: set[str] = set()
    for sidecar in (folder / PROCESSED).glob("*/*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            known.add(json.loads(sidecar.read_text(encoding="utf-8"))["sha256"])
    shutil.rmtree(staging, ignore_errors=True)
    written = samples.write_samples(staging, str(first), str(last))
    folder.mkdir(parents=True, exist_ok=True)
    dropped = 0
    for item in written:
        if hashlib.sha256(item.path.read_bytes()).hexdigest() in known:
            continue
        shutil.move(item.path, folder / item.path.name)
        dropped += 1
    shutil.rmtree(staging, ignore_errors=True)
    return dropped, len(written) - dropped


# --------------------------------------------------------------------------- periods


def parse_period_arg(text: str) -> Period:
    """argparse type for --from/--to."""
    try:
        return Period.parse(text)
    except PeriodError as exc:
        raise argparse.ArgumentTypeError(f"期别格式应为 YYYY-MM: {text!r}") from exc


def today_shanghai(now: datetime | None = None) -> date:
    return bureau_today(now)


def backfill_window(first: Period, last: Period) -> tuple[datetime, datetime]:
    """Backfill from/to dates covering exactly the runs of periods ``first`` .. ``last``.

    A run's logical date is its data-interval start, which lies inside the period's month
    (15th 06:00 Asia/Shanghai for retail_monthly), and Airflow includes every run whose
    logical date is within [from, to]. Whole months in the DAG's timezone make the mapping
    independent of the cron's day and hour.
    """
    if last < first:
        raise DemoError(f"--to {last} 早于 --from {first}")
    start = datetime(first.year, first.month, 1, tzinfo=SHANGHAI)
    after = last.shift(1)
    end = datetime(after.year, after.month, 1, tzinfo=SHANGHAI) - timedelta(seconds=1)
    return start, end


def period_of_logical_date(value: str | datetime) -> Period:
    """The period a run handles: the calendar month (Asia/Shanghai) of its logical date."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"naive logical date {value!r}")
    local = moment.astimezone(SHANGHAI)
    return Period(local.year, local.month)


# --------------------------------------------------------------------------- run tracking

TERMINAL_STATES = ("success", "failed")


@dataclass
class RunTally:
    """State of the runs the demo waits for, one (latest) run per expected period."""

    expected: list[Period]
    runs: dict[Period, dict[str, Any]] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for run in self.runs.values() if run.get("state") == state)

    @property
    def finished(self) -> int:
        return sum(1 for run in self.runs.values() if run.get("state") in TERMINAL_STATES)

    @property
    def missing(self) -> list[Period]:
        return [p for p in self.expected if p not in self.runs]

    @property
    def done(self) -> bool:
        return not self.missing and self.finished == len(self.expected)

    @property
    def failed_runs(self) -> list[dict[str, Any]]:
        return [
            self.runs[p] for p in self.expected if self.runs.get(p, {}).get("state") == "failed"
        ]


def tally_runs(expected: Iterable[Period], runs: Iterable[Mapping[str, Any]]) -> RunTally:
    """Keep, per expected period, the run started last (a period has one run per logical date,
    but a cleared or re-triggered run must not be counted twice)."""
    tally = RunTally(expected=sorted(set(expected)))
    wanted = set(tally.expected)
    for run in runs:
        logical = run.get("logical_date")
        if not logical:
            continue
        period = period_of_logical_date(logical)
        if period not in wanted:
            continue
        current = tally.runs.get(period)
        if current is None or str(run.get("run_after") or "") >= str(
            current.get("run_after") or ""
        ):
            tally.runs[period] = dict(run)
    return tally


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(tally: RunTally, elapsed_s: float) -> str:
    """One compact status line: '已完成 12/34 期 · 运行中 2 · 排队 3 · 失败 0 · 已用时 1:05'.

    Runs not created yet count as queued (排队), so the numbers always add up.
    """
    return _progress(
        finished=tally.finished,
        expected=len(tally.expected),
        running=tally.count("running"),
        queued=tally.count("queued") + len(tally.missing),
        failed=tally.count("failed"),
        elapsed_s=elapsed_s,
    )


def _progress(
    *, finished: int, expected: int, running: int, queued: int, failed: int, elapsed_s: float
) -> str:
    return (
        f"已完成 {finished}/{expected} 期 · 运行中 {running} · 排队 {queued} · 失败 {failed}"
        f" · 已用时 {format_duration(elapsed_s)}"
    )


def progress_line_all(tallies: Mapping[str, RunTally], elapsed_s: float) -> str:
    """``progress_line`` over several DAGs, with each DAG's finished/expected in front:
    'retail_monthly 3/4 · work_ledgers 1/4 | 已完成 4/8 期 · 运行中 2 · …'."""
    if len(tallies) == 1:
        return progress_line(next(iter(tallies.values())), elapsed_s)
    per_dag = " · ".join(f"{d} {t.finished}/{len(t.expected)}" for d, t in tallies.items())
    tally = list(tallies.values())
    return f"{per_dag} | " + _progress(
        finished=sum(t.finished for t in tally),
        expected=sum(len(t.expected) for t in tally),
        running=sum(t.count("running") for t in tally),
        queued=sum(t.count("queued") + len(t.missing) for t in tally),
        failed=sum(t.count("failed") for t in tally),
        elapsed_s=elapsed_s,
    )


def task_log_path(logs_root: Path, ti: Mapping[str, Any]) -> Path:
    """Where Airflow's default ``log_filename_template`` puts a task attempt's log."""
    path = (
        logs_root
        / f"dag_id={ti['dag_id']}"
        / f"run_id={ti.get('dag_run_id') or ti.get('run_id')}"
        / f"task_id={ti['task_id']}"
    )
    map_index = int(ti.get("map_index", -1) or -1)
    if map_index >= 0:
        path /= f"map_index={map_index}"
    return path / f"attempt={max(1, int(ti.get('try_number') or 1))}.log"


# --------------------------------------------------------------------------- summary

VERDICT_LABELS = {"passed": "通过", "warning": "警告", "rejected": "拒收", "unknown": "未知"}
KNOWN_SUMMARY_KEYS = {
    "feed",
    "periods_loaded",
    "first_period",
    "last_period",
    "rows_loaded",
    "rows_quarantined",
    "verdicts",
    "revised_periods",
    "rejected_batches",
    "latest_snapshot",
}


def _fmt_number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _short_list(items: list[Any], limit: int = 12) -> str:
    if not items:
        return "无"
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" …(共 {len(items)} 项)" if len(items) > limit else "")


def render_warehouse_summary(summary: Mapping[str, Any], *, snapshot: bool = True) -> list[str]:
    """Lines for ``consumption_monitor.warehouse.digest.demo_summary``'s dict (unknown keys as is).

    The latest snapshot covers all indicators whatever the feed: ``snapshot=False`` leaves
    it out (shown once after several feeds).
    """
    lines = []
    span = ""
    if summary.get("first_period"):
        span = f" ({summary['first_period']} … {summary.get('last_period')})"
    lines.append(f"已入库期数 Periods loaded: {summary.get('periods_loaded', '—')}{span}")
    lines.append(
        f"入库行数 Rows loaded: {summary.get('rows_loaded', '—')}"
        f" · 隔离 Quarantined: {summary.get('rows_quarantined', '—')}"
    )
    verdicts = summary.get("verdicts") or {}
    if isinstance(verdicts, Mapping) and verdicts:
        shown = " · ".join(f"{VERDICT_LABELS.get(k, k)} {k} {v}" for k, v in verdicts.items())
    else:
        shown = "无"
    lines.append(f"校验结果 Validation: {shown}")
    lines.append(
        f"修订期别 Revised periods: {_short_list(list(summary.get('revised_periods') or []))}"
    )
    rejected = [
        f"{b.get('period')}#{b.get('batch_id')}" if isinstance(b, Mapping) else str(b)
        for b in summary.get("rejected_batches") or []
    ]
    lines.append(f"拒收批次 Rejected batches: {_short_list(rejected)}")
    if snapshot:
        lines.extend(render_snapshot(list(summary.get("latest_snapshot") or [])))
    for key, value in summary.items():
        if key not in KNOWN_SUMMARY_KEYS:
            lines.append(f"{key}: {value}")
    return lines


def render_snapshot(rows: list[Mapping[str, Any]]) -> list[str]:
    """The latest KPI snapshot as a small table (same columns as `cm snapshot`)."""
    if not rows:
        return ["最新快照 Latest snapshot: 无"]
    first = rows[0]
    lines = [f"最新快照 Latest snapshot: {first.get('period')} (单位 {first.get('unit', '—')})"]
    widths = (24, 14, 16, 11, 11)
    header = ("指标", "当月", "累计", "当月同比%", "累计同比%")
    lines.append(
        "  "
        + pad(header[0], widths[0])
        + "".join(pad(h, w, right=True) for h, w in zip(header[1:], widths[1:], strict=True))
        + "  校验"
    )
    for row in rows:
        cells = (
            _fmt_number(row.get("actual_month")),
            _fmt_number(row.get("actual_ytd")),
            _fmt_number(row.get("yoy_month_pct")),
            _fmt_number(row.get("yoy_ytd_pct")),
        )
        name = str(row.get("name") or row.get("kpi_id") or "")
        lines.append(
            "  "
            + pad(name, widths[0])
            + "".join(pad(c, w, right=True) for c, w in zip(cells, widths[1:], strict=True))
            + f"  {row.get('validation_state') or '—'}"
        )
    return lines


def render_summary(
    summaries: Mapping[str, Mapping[str, Any] | None],
    *,
    tallies: Mapping[str, RunTally],
    ui_url: str,
    password: str,
    password_file: Path,
    logs_dir: Path,
    elapsed_s: float,
    catchup: Mapping[str, Any] | None = None,
    report: Mapping[str, Any] | None = None,
) -> str:
    """The text shown when the demo ends: the catch-up run, then per feed (``summaries``
    maps feed = DAG id to ``demo_summary``'s dict, None when unavailable) its runs and
    warehouse content; then how to browse."""
    lines = ["", "===== 演示结果 Demo summary ====="]
    if catchup:
        first, last = catchup.get("range") or ("?", "?")
        feeds_state = catchup.get("feeds") or {}
        ok = sum(1 for state in feeds_state.values() if state == "success")
        lines.append(
            f"历史补数 Catch-up {first} … {last} ({CATCHUP_DAG_ID}): {catchup.get('state')}"
            f" · 数据源成功 {ok}/{len(feeds_state)}"
        )
        if catchup.get("ui"):
            lines.append(f"  界面 UI: {catchup['ui']}")
    feeds = list(dict.fromkeys([*summaries, *tallies]))
    if len(feeds) > 1:
        runs = [t for t in tallies.values()]
        expected = sum(len(t.expected) for t in runs)
        lines.append(
            f"全部数据源 All feeds ({len(feeds)}): 成功 {sum(t.count('success') for t in runs)}"
            f" · 失败 {sum(t.count('failed') for t in runs)}"
            f" · 未完成 {expected - sum(t.finished for t in runs)} (共 {expected} 次运行)"
        )
    for feed in feeds:
        lines.append(f"--- {feed} ---")
        tally = tallies.get(feed)
        if tally is not None:
            lines.append(
                f"Airflow 运行 Runs: 成功 {tally.count('success')} · 失败 {tally.count('failed')}"
                f" · 未完成 {len(tally.expected) - tally.finished} (共 {len(tally.expected)} 期)"
            )
        summary = summaries.get(feed)
        if summary is None:
            lines.append("仓库摘要 Warehouse summary: 不可用")
        else:
            lines.extend(render_warehouse_summary(summary, snapshot=len(feeds) == 1))
    if len(feeds) > 1:  # the same for every feed: once, from any feed's summary
        rows = next(
            (s["latest_snapshot"] for s in summaries.values() if s and s.get("latest_snapshot")), []
        )
        lines.append("--- 全部指标 All indicators ---")
        lines.extend(render_snapshot(list(rows)))
    if report:
        lines.append(
            f"月报 Monthly report {report.get('period')} ({SNAPSHOT_DAG_ID}): {report.get('state')}"
        )
        if report.get("state") == "success":
            lines.append(f"  {report.get('html')} · 界面 {report.get('ui')}")
    lines += [
        f"Airflow 界面 UI: {ui_url}",
        f"登录 Login: 用户名 {ADMIN_USER} · 密码 {password}  (保存在 {password_file})",
        f"进程日志 Logs: {logs_dir}",
        f"用时 Elapsed: {format_duration(elapsed_s)}",
        "Airflow 与样例数据服务仍在后台运行；停止请执行 `make stop`。",
    ]
    return "\n".join(lines)


def load_demo_summary(url: str, feed: str = DAG_ID) -> dict[str, Any] | None:
    """The warehouse summary from the reporting module; None when it is not importable."""
    try:
        from consumption_monitor.warehouse.db import make_engine
        from consumption_monitor.warehouse.digest import demo_summary
    except ImportError:
        return None
    engine = make_engine(url)
    try:
        return dict(demo_summary(engine, feed))
    finally:
        engine.dispose()


def warehouse_is_empty(url: str, feed: str = DAG_ID) -> bool:
    """True when no period of ``feed`` is loaded yet (also when the summary cannot be read)."""
    try:
        summary = load_demo_summary(url, feed)
    except Exception:  # a broken or foreign warehouse: reload everything
        return True
    return not (summary or {}).get("periods_loaded")


def migrate_warehouse(url: str) -> bool:
    """Bring the warehouse schema up to date; False when the migration module is missing."""
    try:
        from consumption_monitor.warehouse.migrate import upgrade
    except ImportError:
        return False
    upgrade(url)
    return True


# --------------------------------------------------------------------------- HTTP


class AirflowApi:
    """Just enough of Airflow's REST API v2 for the demo, authenticated with a JWT.

    SQLite allows one writer at a time and the scheduler writes constantly, so a write can be
    refused with "database is locked" (HTTP 503, or 500/409 mentioning the lock). Those calls
    are retried; Airflow rolls each refused request back completely.
    """

    LOCK_RETRIES = 8

    def __init__(self, base_url: str, username: str, password: str) -> None:
        import requests  # local: keeps `cm --help` and the pure helpers light

        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._http = requests.Session()
        self._token: str | None = None

    def _login(self) -> None:
        resp = self._http.post(
            f"{self.base_url}/auth/token",
            json={"username": self._username, "password": self._password},
            timeout=30,
        )
        if resp.status_code >= 400:
            raise DemoError(f"Airflow 登录失败 ({resp.status_code}): {resp.text[:200]}")
        self._token = resp.json()["access_token"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON body of a successful call; re-logs in on 401, retries database-lock refusals."""
        relogged = False
        for attempt in range(1, self.LOCK_RETRIES + 1):
            if self._token is None:
                self._login()
            resp = self._http.request(
                method,
                f"{self.base_url}/api/v2{path}",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=60,
                **kwargs,
            )
            if resp.status_code == 401 and not relogged:
                self._token, relogged = None, True
                continue
            if is_lock_refusal(resp.status_code, resp.text) and attempt < self.LOCK_RETRIES:
                time.sleep(min(0.5 * attempt, 3.0))
                continue
            if resp.status_code >= 300:
                raise ApiError(resp.status_code, f"{method} {path}: {resp.text[:300]}")
            return resp.json() if resp.content else None
        raise ApiError(503, f"{method} {path}: database stayed locked")

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", f"/dags/{dag_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/importErrors", params={"limit": 100})["import_errors"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call(
            "PATCH",
            f"/dags/{dag_id}",
            params={"update_mask": "is_paused"},
            json={"is_paused": paused},
        )

    def active_backfill(self, dag_id: str) -> dict[str, Any] | None:
        data = self.call("GET", "/backfills", params={"dag_id": dag_id, "limit": 100})
        active = [b for b in data["backfills"] if not b.get("completed_at")]
        return active[-1] if active else None

    def dry_run(self, body: Mapping[str, Any]) -> list[str]:
        data = self.call("POST", "/backfills/dry_run", json=dict(body))
        return [b["logical_date"] for b in data["backfills"] if b.get("logical_date")]

    def create_backfill(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/backfills", json=dict(body))

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Clear every task of one run and queue the run again (the UI's "Clear run")."""
        self.call(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "only_failed": False,
                "reset_dag_runs": True,
                "note": "make demo: rerun",
            },
        )

    def dag_runs(
        self, dag_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Runs whose logical date lies in ``start`` … ``end``; without them every run of the
        DAG, manual runs (no logical date) included."""
        window = (
            {
                "logical_date_gte": start.isoformat(),
                "logical_date_lte": end.isoformat(),
                "order_by": "logical_date",
            }
            if start is not None and end is not None
            else {"order_by": "id"}
        )
        runs: list[dict[str, Any]] = []
        while True:
            data = self.call(
                "GET",
                f"/dags/{dag_id}/dagRuns",
                params={**window, "limit": 100, "offset": len(runs)},
            )
            runs.extend(data["dag_runs"])
            if not data["dag_runs"] or len(runs) >= data["total_entries"]:
                return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(data["task_instances"])


def is_lock_refusal(status: int, body: str) -> bool:
    """Whether Airflow refused a request because SQLite's write lock was busy.

    Airflow answers 503 when it recognises the lock error; elsewhere it hides the cause
    behind a generic 500 "Database error" (the transaction is rolled back either way).
    """
    text = body.lower()
    return (
        status == 503
        or (status == 409 and "locked" in text)
        or (status == 500 and ("locked" in text or "database error" in text))
    )


def backfill_body(
    dag_id: str,
    start: datetime,
    end: datetime,
    reprocess: str = "none",
    max_active_runs: int = BACKFILL_MAX_ACTIVE_RUNS,
) -> dict[str, Any]:
    """POST /backfills body for ``dag_id`` between ``start`` and ``end`` (inclusive)."""
    return {
        "dag_id": dag_id,
        "from_date": start.isoformat(),
        "to_date": end.isoformat(),
        "reprocess_behavior": reprocess,
        "max_active_runs": max_active_runs,
        "run_backwards": False,
    }


class ApiError(DemoError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def http_json(url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """GET ``url`` as JSON; None on any connection problem (used for health polling)."""
    import requests

    try:
        resp = requests.get(url, timeout=timeout)
        if resp.status_code != 200:
            return None
        data = resp.json()
    except (requests.RequestException, ValueError):
        return None
    return data if isinstance(data, dict) else None


def airflow_ready(health: Mapping[str, Any] | None) -> bool:
    """Metadata DB, scheduler and DAG processor healthy (the triggerer is not needed here)."""
    if not health:
        return False
    parts = ("metadatabase", "scheduler", "dag_processor")
    return all((health.get(p) or {}).get("status") == "healthy" for p in parts)


# --------------------------------------------------------------------------- processes


@dataclass
class Started:
    service: str
    record: PidRecord
    proc: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> int | None:
        return self.proc.poll()


def spawn(layout: Layout, service: str, argv: list[str], env: Mapping[str, str]) -> Started:
    """Start ``argv`` detached in its own session (so it outlives us and stops as a group)."""
    log = layout.log_file(service)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=layout.repo,
            start_new_session=True,
        )
    try:
        starttime = parse_stat(Path(f"/proc/{proc.pid}/stat").read_text())[3]
    except (OSError, ValueError, IndexError):
        starttime = 0
    record = PidRecord(
        pid=proc.pid,
        pgid=proc.pid,  # start_new_session: the child leads its own group
        command=" ".join(argv[:4]),  # never the token further down the feed command
        started_at=time.time(),
        boot_id=boot_id(),
        starttime=starttime,
    )
    write_pid_file(layout.pid_file(service), record)
    return Started(service, record, proc, log)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_for(
    check: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
    started: Started | None = None,
    interval_s: float = 1.0,
    console: Console | None = None,
) -> None:
    """Poll ``check`` until true; fail early (with the log tail) if the process died."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while True:
        if check():
            return
        if console is not None:
            console.waiting(f"等待 {what}", time.monotonic() - t0)
        if started is not None and started.exited() is not None:
            raise DemoError(
                f"{what}: 进程已退出 (exit {started.exited()})，"
                f"日志 {started.log}:\n{tail(started.log)}"
            )
        if time.monotonic() > deadline:
            log_hint = f"，日志 {started.log}:\n{tail(started.log)}" if started else ""
            raise DemoError(f"{what}: {int(timeout_s)} 秒内未就绪{log_hint}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------- the demo


class Console:
    """Progress goes to stdout, or to stderr with --json so stdout stays machine-readable."""

    def __init__(self, json_mode: bool) -> None:
        self.out: TextIO = sys.stderr if json_mode else sys.stdout
        self.tty = self.out.isatty()
        self._status_open = False
        self._last_status = ""
        self._last_status_at = 0.0

    def say(self, text: str) -> None:
        if self._status_open:  # replace the transient status line on a terminal
            print("\r\033[K", end="", file=self.out)
            self._status_open = False
        print(text, file=self.out, flush=True)

    def waiting(self, what: str, elapsed_s: float) -> None:
        """A ticking 'still waiting' line, on terminals only (logs need no ticker)."""
        if self.tty:
            self.status(f"      {what} … {int(elapsed_s)} s")

    def status(self, text: str) -> None:
        """Rewrite one line on a terminal; elsewhere print changes at most every 10 s."""
        if self.tty:
            print(f"\r\033[K{text}", end="", file=self.out, flush=True)
            self._status_open = True
            return
        core = text.rsplit(" · 已用时", 1)[0]
        now = time.monotonic()
        if core != self._last_status and now - self._last_status_at >= 10:
            print(text, file=self.out, flush=True)
            self._last_status, self._last_status_at = core, now

    def final_status(self, text: str) -> None:
        """The last progress line: shown once, even if its counts were printed already."""
        if self.tty:
            self.status(text)
            self._end_status()
        elif text.rsplit(" · 已用时", 1)[0] != self._last_status:
            self.say(text)

    def _end_status(self) -> None:
        if self._status_open:
            print(file=self.out, flush=True)
            self._status_open = False


@dataclass
class Step:
    console: Console
    number: int
    total: int
    title: str
    t0: float = field(default_factory=time.monotonic)

    def __enter__(self) -> Step:
        self.console.say(f"[{self.number}/{self.total}] {self.title} …")
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.console.say(f"      完成 done ({time.monotonic() - self.t0:.1f} s)")


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


def run_demo(
    args: argparse.Namespace, layout: Layout, console: Console
) -> tuple[dict[str, Any], dict[str, RunTally]]:
    """Set up, start, backfill and wait; returns the JSON-able result and the run tallies."""
    t0 = time.monotonic()
    deadline = t0 + timeout_minutes(args) * 60
    feeds = resolved_feeds(args)
    first: Period = args.period_from
    last: Period = args.period_to or _default_to()
    backfill_window(first, last)  # rejects a reversed range before anything is touched
    catchup_range, (bf_first, bf_last) = split_range(
        first, last, getattr(args, "recent", DEFAULT_RECENT)
    )
    ui_url = f"http://127.0.0.1:{args.port_ui}"
    steps = 8

    with Step(console, 1, steps, "清理旧的演示进程 Stopping leftovers"):
        stopped = stop_all(layout)
        if stopped:
            console.say(f"      已停止 {stopped} 个旧进程")
        for port, flag in ((args.port_ui, "--port-ui"), (args.port_feed, "--port-feed")):
            if not port_free(port):
                holder = port_holder(port)
                raise DemoError(
                    f"端口 {port} 已被其他程序占用{f' ({holder})' if holder else ''}；"
                    f"请释放它或用 {flag} 换一个端口"
                )

    with Step(console, 2, steps, "准备目录、配置与仓库 Preparing config and warehouse"):
        for path in (layout.airflow_home, layout.demo, layout.data / "archive"):
            path.mkdir(parents=True, exist_ok=True)
        existing = (
            layout.airflow_cfg.read_text(encoding="utf-8") if layout.airflow_cfg.exists() else None
        )
        write_private(
            layout.airflow_cfg,
            merge_airflow_cfg(existing, airflow_settings(layout, port_ui=args.port_ui)),
        )
        password = ensure_admin_password(layout.password_file)
        token = new_feed_token(layout.token_file)
        if not migrate_warehouse(layout.warehouse_url):
            console.say("      注意: consumption_monitor.warehouse.migrate 不可用，跳过仓库迁移")
        # An empty warehouse (first demo, or data/ deleted) needs every period loaded again,
        # even where Airflow remembers successful runs.
        rerun_all = {feed: warehouse_is_empty(layout.warehouse_url, feed) for feed in feeds}
        env = process_env(layout, port_feed=args.port_feed, token=token)
        file_feeds = file_drop_feeds(feeds)
        incoming = Path(env.get("CM_INCOMING_DIR") or layout.data / "incoming")
        for feed in file_feeds:
            dropped, known = drop_sample_files(
                feed, incoming, layout.demo / f"staging-{feed}", first, last
            )
            console.say(
                f"      {feed}: 放入 {dropped} 个样例台账文件 (dropped sample files)"
                + (f"，{known} 个已处理过" if known else "")
            )
        in_flight = {
            feed: backfill_runs_in_flight(feed, feeds, file_feeds=file_feeds) for feed in feeds
        }

    with Step(console, 3, steps, f"启动样例数据服务 Feed server :{args.port_feed}"):
        feed = spawn(layout, "feed-server", feed_command(args.port_feed, token), env)
        feed_url = f"http://127.0.0.1:{args.port_feed}/health"
        wait_for(
            lambda: (http_json(feed_url) or {}).get("status") == "ok",
            what="样例数据服务",
            timeout_s=60,
            started=feed,
            interval_s=0.5,
        )

    with Step(console, 4, steps, f"启动 Airflow standalone {ui_url} (约 1 分钟)"):
        airflow = spawn(layout, "airflow", [str(layout.venv_bin / "airflow"), "standalone"], env)
        wait_for(
            lambda: airflow_ready(http_json(f"{ui_url}/api/v2/monitor/health")),
            what="Airflow",
            timeout_s=max(60.0, min(300.0, deadline - time.monotonic())),
            started=airflow,
            interval_s=2,
            console=console,
        )
        api = AirflowApi(ui_url, ADMIN_USER, password)

    dag_ids = [*feeds, CATCHUP_DAG_ID] if catchup_range else list(feeds)
    with Step(console, 5, steps, f"等待 DAG {', '.join(dag_ids)} 解析 Parsing DAG"):
        for dag_id in dag_ids:  # parsed in one pass of the folder: later ones are quick
            wait_for_dag(api, airflow, dag_id, timeout_s=180, console=console)

    catchup: dict[str, Any] | None = None
    if catchup_range:
        label = f"{catchup_range[0]} … {catchup_range[1]}"
        console.say(f"[6/{steps}] 历史补数 Catch-up {label} ({CATCHUP_DAG_ID}, 每个数据源一个任务)")
        run_id = trigger_catchup(api, feeds, *catchup_range)
        catchup = wait_for_catchup(
            api, run_id, feeds, console, t0=t0, deadline=deadline, airflow=airflow
        )
        catchup.update(
            range=[str(p) for p in catchup_range],
            ui=f"{ui_url}/dags/{CATCHUP_DAG_ID}/runs/{run_id}",
        )
    else:
        console.say(f"[6/{steps}] 历史补数 Catch-up: 无 (全部期别逐期运行)")

    with Step(console, 7, steps, f"提交逐期回填 Backfill {bf_first} … {bf_last}"):
        expected: dict[str, list[Period]] = {}
        for feed in feeds:
            expected[feed], notes = submit_backfill(
                api,
                bf_first,
                bf_last,
                rerun_all=rerun_all[feed],
                dag_id=feed,
                max_active_runs=in_flight[feed],
            )
            for note in notes:
                console.say(f"      {feed}: {note}" if len(feeds) > 1 else f"      {note}")
        for feed in feeds:
            api.set_paused(feed, False)

    total = sum(len(p) for p in expected.values())
    console.say(f"[8/{steps}] 等待各期运行完成 Waiting for {total} runs (界面 {ui_url})")
    tallies, timed_out = watch_runs(
        api,
        expected,
        (bf_first, bf_last),
        console,
        t0=t0,
        deadline=deadline,
        airflow=airflow,
        runs_in_flight=in_flight,
    )
    report: dict[str, Any] | None = None
    if SNAPSHOT_DAG_ID not in dag_ids:
        with contextlib.suppress(DemoError, ApiError, OSError):
            wait_for_dag(api, airflow, SNAPSHOT_DAG_ID, timeout_s=60)
            console.say(f"      指标快照与月报 Snapshots and report {last} ({SNAPSHOT_DAG_ID}) …")
            report = report_run(api, last, deadline=deadline + 300, airflow=airflow)
            report["html"] = str(layout.data / "reports" / f"{last}.html")
            report["ui"] = f"{ui_url}/cm-reports/"
    failures = [
        item
        for feed, tally in tallies.items()
        if tally.failed_runs or not tally.done
        for item in describe_failures(api, tally, layout, feed)
    ]
    summaries: dict[str, dict[str, Any] | None] = {}
    summary_errors: dict[str, str] = {}
    for feed in feeds:
        try:
            summaries[feed] = load_demo_summary(layout.warehouse_url, feed)
        except Exception as exc:
            summaries[feed] = None
            summary_errors[feed] = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - t0
    ok = all(t.done and not t.failed_runs for t in tallies.values()) and not timed_out
    if report is not None:
        ok = ok and report["state"] == "success"
    if catchup is not None:
        ok = ok and catchup["state"] == "success"
        timed_out = timed_out or catchup["state"] not in TERMINAL_STATES
    return {
        "ok": ok,
        "timed_out": timed_out,
        "feeds": list(feeds),
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
        "ui_url": ui_url,
        "username": ADMIN_USER,
        "password": password,
        "password_file": str(layout.password_file),
        "logs_dir": str(layout.demo),
        "task_logs_dir": str(layout.task_logs),
        "elapsed_s": round(elapsed, 1),
    }, tallies


def feed_command(port: int, token: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "consumption_monitor",
        "feed-server",
        "--port",
        str(port),
        f"--token={token}",  # one argument: a random token may start with "-"
    ]


def parsed_since(value: str | None, since: datetime) -> bool:
    """Whether an API timestamp (ISO 8601, may be None) is at or after ``since``."""
    if not value:
        return False
    return datetime.fromisoformat(value) >= since


def wait_for_dag(
    api: AirflowApi,
    airflow: Started,
    dag_id: str = DAG_ID,
    *,
    timeout_s: float,
    console: Console | None = None,
) -> None:
    """Wait until *this* Airflow parsed the DAG; fail at once on a fresh import error.

    A DAG serialised by an earlier demo is not enough: the file may have changed (or broken)
    since, and runs would then use the old version.
    """
    since = datetime.fromtimestamp(airflow.record.started_at - 1, UTC)

    def parsed() -> bool:
        dag = api.dag(dag_id)
        if dag is not None and parsed_since(dag.get("last_parsed_time"), since):
            return True
        ours = {f"{dag_id}.py"}
        if dag is not None and dag.get("fileloc"):
            ours.add(Path(dag["fileloc"]).name)
        for error in api.import_errors():
            name = Path(error.get("filename") or "").name
            if name in ours and parsed_since(error.get("timestamp"), since):
                raise DemoError(
                    f"DAG 文件导入失败 {error.get('filename')}:\n"
                    f"{(error.get('stack_trace') or '')[-1500:]}"
                )
        return False

    wait_for(
        parsed,
        what=f"DAG {dag_id}",
        timeout_s=timeout_s,
        started=airflow,
        interval_s=2,
        console=console,
    )


def runs_to_rerun(runs: Iterable[Mapping[str, Any]], *, rerun_all: bool) -> list[dict[str, Any]]:
    """Existing runs the demo clears so they run again.

    Normally only failed runs: successful ones already loaded their period, and queued or
    running ones are about to. With ``rerun_all`` (the warehouse is empty) every run,
    whatever its state - a run that extracted into a warehouse since deleted cannot finish.
    """
    return [dict(r) for r in runs if rerun_all or r.get("state") == "failed"]


def submit_backfill(
    api: AirflowApi,
    first: Period,
    last: Period,
    *,
    rerun_all: bool,
    dag_id: str = DAG_ID,
    max_active_runs: int = BACKFILL_MAX_ACTIVE_RUNS,
) -> tuple[list[Period], list[str]]:
    """Queue a run for every period and return the periods whose runs we wait for.

    * Periods without a run get one from a backfill (``reprocess_behavior=none``).
    * Existing runs that must run again are cleared one by one. Letting the backfill
      reprocess them instead clears all of them in one long transaction, which SQLite
      refuses while the scheduler writes ("Database is locked ... not supported on SQLite").
    * The expected periods come from Airflow (a dry run that ignores existing runs, plus the
      runs already in the window), so they follow the DAG's timetable: periods whose data
      interval has not ended yet cannot run and are reported, not waited for.
    """
    start, end = backfill_window(first, last)
    notes: list[str] = []
    body = backfill_body(dag_id, start, end, max_active_runs=max_active_runs)
    # Paused, the scheduler leaves the DAG's runs alone while we clear and create them (fewer
    # SQLite write conflicts); the caller unpauses it to release everything at once.
    api.set_paused(dag_id, True)
    runnable = {
        period_of_logical_date(d)
        for d in api.dry_run(backfill_body(dag_id, start, end, "completed"))
    }
    existing = [r for r in api.dag_runs(dag_id, start, end) if r.get("logical_date")]
    expected = sorted(runnable | {period_of_logical_date(r["logical_date"]) for r in existing})
    if not expected:
        raise DemoError(f"{first} … {last} 之间没有可运行的期别（数据区间尚未结束？）")
    skipped = [p for p in _months(first, last) if p not in set(expected)]
    if skipped:
        notes.append("尚未到运行时间、本次不运行的期别: " + ", ".join(map(str, skipped)))
    rerun = runs_to_rerun(existing, rerun_all=rerun_all)
    for run in rerun:
        api.clear_run(dag_id, run["dag_run_id"])
    if rerun:
        why = "仓库为新建，全部重跑" if rerun_all else "重跑失败的期别"
        notes.append(f"{why}: 已清除 {len(rerun)} 个已有运行 (cleared existing runs)")
    if existing and not rerun:
        notes.append(f"已有 {len(existing)} 期运行成功或进行中，不重跑 (already done)")
    new_runs = len(runnable - {period_of_logical_date(r["logical_date"]) for r in existing})
    if not new_runs:
        return expected, notes
    active = api.active_backfill(dag_id)
    if active is not None:
        notes.append(f"沿用进行中的回填 #{active['id']} (reuse running backfill)")
        return expected, notes
    try:
        created = api.create_backfill(body)
    except ApiError as exc:
        if exc.status != 409:
            raise
        notes.append("已有回填在运行，沿用它 (backfill already running)")
        return expected, notes
    notes.append(
        f"回填 #{created['id']}: 新建 {new_runs} 期运行，同时运行至多 "
        f"{created['max_active_runs']} 期 (backfill created)"
    )
    return expected, notes


def _months(first: Period, last: Period) -> list[Period]:
    out, cur = [], first
    while cur <= last:
        out.append(cur)
        cur = cur.shift(1)
    return out


def watch_runs(
    api: AirflowApi,
    expected: Mapping[str, list[Period]],
    window: tuple[Period, Period],
    console: Console,
    *,
    t0: float,
    deadline: float,
    airflow: Started | None = None,
    runs_in_flight: Mapping[str, int] | None = None,
) -> tuple[dict[str, RunTally], bool]:
    """Poll run states of every DAG until all expected periods finished or the deadline passed.

    ``expected`` maps DAG id to its periods. A few failed polls are tolerated (the API server
    is busy while many runs start); Airflow having exited, or not answering for a minute,
    ends the wait with an error. Periods that still have no run after a while (a backfill
    creation that SQLite cut short) get a new backfill, which creates only the missing runs.
    """
    import requests

    start, end = backfill_window(*window)
    tallies = {dag_id: tally_runs(periods, []) for dag_id, periods in expected.items()}
    failing_since: float | None = None
    missing_since: dict[str, float] = {}
    while True:
        now = time.monotonic()
        try:
            for dag_id, periods in expected.items():
                if tallies[dag_id].done:
                    continue
                tally = tallies[dag_id] = tally_runs(periods, api.dag_runs(dag_id, start, end))
                if not tally.missing:
                    missing_since.pop(dag_id, None)
                    continue
                since = missing_since.setdefault(dag_id, now)
                if now - since > MISSING_RUN_GRACE_S:
                    del missing_since[dag_id]
                    if api.active_backfill(dag_id) is None:
                        in_flight = (runs_in_flight or {}).get(dag_id, BACKFILL_MAX_ACTIVE_RUNS)
                        with contextlib.suppress(ApiError):  # 409: one was created meanwhile
                            api.create_backfill(
                                backfill_body(dag_id, start, end, max_active_runs=in_flight)
                            )
                            console.say(
                                f"      {dag_id} 补建缺少的运行: "
                                + ", ".join(map(str, tally.missing))
                            )
            failing_since = None
        except (requests.RequestException, ApiError) as exc:
            failing_since = failing_since or now
            if (airflow is not None and airflow.exited() is not None) or now - failing_since > 60:
                raise DemoError(f"Airflow 无响应或已停止，无法继续跟踪运行: {exc}") from exc
        line = progress_line_all(tallies, time.monotonic() - t0)
        done = all(t.done for t in tallies.values())
        if done or time.monotonic() > deadline:
            console.final_status(line)
            return tallies, not done
        console.status(line)
        time.sleep(3)


def trigger_run(
    api: AirflowApi,
    dag_id: str,
    conf: Mapping[str, Any],
    note: str,
    *,
    run_id: str | None = None,
) -> str:
    """Unpause ``dag_id`` and queue one manual run with ``conf``; returns its run id (by
    default one per second: callers queuing several at once pass their own)."""
    run_id = run_id or f"demo__{int(time.time())}"
    api.set_paused(dag_id, False)
    api.call(
        "POST",
        f"/dags/{dag_id}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf), "note": note},
    )
    return run_id


def trigger_catchup(api: AirflowApi, feeds: Iterable[str], first: Period, last: Period) -> str:
    """Queue one feed_catchup run for ``feeds`` over ``first`` … ``last``; returns its run id."""
    conf = {"feeds": list(feeds), "from": str(first), "to": str(last)}
    return trigger_run(api, CATCHUP_DAG_ID, conf, "make demo: 历史补数")


def run_state(api: AirflowApi, dag_id: str, run_id: str) -> str:
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}").get("state") or "queued"


def report_run(
    api: AirflowApi, period: Period, *, deadline: float, airflow: Started | None = None
) -> dict[str, Any]:
    """The indicator_snapshots DAG for ``period``: every KPI's snapshot and the monthly
    report (HTML + XLSX). Unpaused, it also follows the feeds' Assets from now on."""
    run_id = trigger_run(
        api, SNAPSHOT_DAG_ID, {"periods": [str(period)]}, "make demo: 指标快照与月报"
    )
    state = "queued"
    while time.monotonic() < deadline:
        if airflow is not None and airflow.exited() is not None:
            break
        with contextlib.suppress(ApiError, OSError):
            state = run_state(api, SNAPSHOT_DAG_ID, run_id)
        if state in TERMINAL_STATES:
            break
        time.sleep(3)
    return {"run_id": run_id, "state": state, "period": str(period)}


def catchup_progress(tis: Iterable[Mapping[str, Any]], feeds: Sequence[str]) -> dict[str, str]:
    """State of each feed's catch-up task. The mapped task instances follow the order of
    ``feeds`` (the plan keeps it); Airflow renders their labels only when they finish."""
    out: dict[str, str] = {}
    for ti in tis:
        index = ti.get("map_index")
        if ti.get("task_id") != "catch_up" or index is None or index < 0:
            continue  # -1: the task is not expanded yet
        label = ti.get("rendered_map_index") or (feeds[index] if index < len(feeds) else str(index))
        out[str(label)] = ti.get("state") or "queued"
    return out


def wait_for_catchup(
    api: AirflowApi,
    run_id: str,
    feeds: Sequence[str],
    console: Console,
    *,
    t0: float,
    deadline: float,
    airflow: Started | None = None,
) -> dict[str, Any]:
    """Poll the catch-up run until it ends (or the deadline); returns its state per feed."""
    import requests

    failing_since: float | None = None
    state, states = "queued", {}
    while True:
        now = time.monotonic()
        try:
            run = api.call("GET", f"/dags/{CATCHUP_DAG_ID}/dagRuns/{run_id}")
            state = run.get("state") or "queued"
            states = catchup_progress(api.task_instances(CATCHUP_DAG_ID, run_id), feeds)
            failing_since = None
        except (requests.RequestException, ApiError) as exc:
            failing_since = failing_since or now
            if (airflow is not None and airflow.exited() is not None) or now - failing_since > 60:
                raise DemoError(f"Airflow 无响应或已停止，无法继续跟踪补数: {exc}") from exc
        done = sum(1 for s in states.values() if s in TERMINAL_STATES)
        line = (
            f"      补数 {done}/{len(feeds)} 个数据源完成"
            + "".join(f" · {f} {s}" for f, s in states.items() if s not in TERMINAL_STATES)
            + f" · 已用 {format_duration(time.monotonic() - t0)}"
        )
        if state in TERMINAL_STATES or time.monotonic() > deadline:
            console.final_status(line)
            return {"run_id": run_id, "state": state, "feeds": states}
        console.status(line)
        time.sleep(3)


def describe_failures(
    api: AirflowApi, tally: RunTally, layout: Layout, dag_id: str = DAG_ID
) -> list[dict[str, Any]]:
    """Failed or unfinished runs with their unfinished tasks and log files, for the operator."""
    import requests

    out: list[dict[str, Any]] = []
    for period in tally.expected:
        run = tally.runs.get(period)
        if run is None:
            out.append({"dag_id": dag_id, "period": str(period), "state": "missing", "tasks": []})
            continue
        if run.get("state") == "success":
            continue
        tasks = []
        with contextlib.suppress(DemoError, requests.RequestException):
            for ti in api.task_instances(dag_id, run["dag_run_id"]):
                if ti.get("state") in ("success", "skipped"):
                    continue
                entry = {"task_id": ti["task_id"], "state": ti.get("state") or "none"}
                if ti.get("state") in ("failed", "running", "up_for_retry"):
                    entry["log"] = str(task_log_path(layout.task_logs, {**ti, "dag_id": dag_id}))
                tasks.append(entry)
        out.append(
            {
                "dag_id": dag_id,
                "period": str(period),
                "state": run.get("state"),
                "run_id": run["dag_run_id"],
                "tasks": tasks,
            }
        )
    return out


def render_failures(failures: list[dict[str, Any]], ui_url: str) -> str:
    lines = ["未成功的期别 Unsuccessful runs:"]
    for item in failures:
        dag_id = item.get("dag_id") or DAG_ID
        lines.append(f"  {dag_id} {item['period']}: {item['state']}")
        if item.get("run_id"):
            lines.append(f"    界面 UI: {ui_url}/dags/{dag_id}/runs/{item['run_id']}")
        for task in item["tasks"]:
            log = f" · 日志 {task['log']}" if task.get("log") else ""
            lines.append(f"    {task['task_id']}: {task['state']}{log}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


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
