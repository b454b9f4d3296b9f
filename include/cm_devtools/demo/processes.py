"""The demo's background processes: starting them detached, finding them again, stopping them.

Every process started here carries ``CM_DEMO_OWNER=<data/demo>`` in its environment (see
``airflow_home.process_env``). Stopping signals the process groups from the pid files, every
process with the marker and their descendants: leftovers whose pid file was lost or is stale
are found, and nothing else is touched. Ports are checked before anything starts, with the
holder's command line in the message.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from cm_devtools.demo.common import DemoError, Layout
from cm_devtools.demo.console import Console

OWNER_ENV = "CM_DEMO_OWNER"
SERVICES = ("airflow", "feed-server")


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
