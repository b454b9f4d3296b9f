"""Trade-in at transaction scale on PostgreSQL (issues 4 §5 and 17): the platform's whole
run (extract with pseudonymisation, validation, load) of ``CM_BENCH_TRADEIN_ROWS`` (default
1,000,000) transactions of one period from the local feed server, against peers measured
in the same run on the same rows and the same PostgreSQL:

- fetching the pages alone (the bound of any pipeline);
- dlt's fastest documented configuration (Arrow items, ``parquet`` loader through ADBC), in
  the bench-only venv ``.venv-peers`` that ``make bench`` builds from
  ``bench/requirements-peers.txt`` (``CM_BENCH_PEERS_PYTHON`` overrides; without it the dlt
  figures are recorded as not measured); its ``merge`` reload of the period beside it;
- a naive pandas script (requests → DataFrame → ``to_sql``);
- raw ``COPY`` of the loaded rows into a table with the same keys and indexes, and into an
  unindexed table followed by building those indexes (the late-index bound of the load);
- the platform's reload of the loaded period (a partition swap).

Goals (issue 17): end to end ≥ dlt, ≥ 1.5× to_sql, ≥ 0.6× fetching alone; the load stage ≥
0.8× the late-index COPY; a reload no slower than 0.9× the first load; peak memory < 1 GiB
at 1M and 10M rows (the summed PSS of the pipeline and its worker processes,
``tradein_stages.TreeMemory``; ``peak_rss_sum_mb``: its own peak RSS plus its largest
worker's, which counts the pages shared after a fork twice); the 10M load keeps ≥ 0.8 of
the 1M load's rate (10M runs only with ``CM_BENCH_TRADEIN_10M=1``: it takes a long time),
beside PostgreSQL's own scaling on the machine (``late_index_rate_10m_vs_1m``: the late-index
bound at 10M against 1M: measured 2026-12-01, the 10M COPY waited on the WAL in over a
quarter of its samples, which the 1M one barely does; a ``max_wal_size`` of 4 GB instead of
1 GB did not change its time).

The CPU account of the platform's run is recorded beside (issue 17's evidence): the CPU
seconds of the pipeline (its process and workers) and of the feed server serving it, and
the floor they set on 2 cores (``e2e_cpu_floor_s``: their sum over the cores; no overlap of
stages can end the run sooner), with ``cpu_floor_vs_fetch``: the best ``e2e_vs_fetch`` that
floor allows, and ``cpu_floor_vs_dlt``: the best ``e2e_vs_dlt`` it allows. dlt's run is
accounted the same way (``cpu_s_dlt``: its process; ``cpu_s_feed_server_dlt``: the server
serving it), and ``cpu_vs_dlt`` is dlt's CPU seconds over the platform's for the same rows,
the server's on both sides (1.0: as frugal as dlt, which neither validates nor protects
personal data). The spread of the rounds is kept beside the medians (``e2e_s_min`` /
``e2e_s_max``, ``dlt_s_min`` / ``dlt_s_max``): on the machines measured dlt's own run has
moved by up to ±10 % between rounds, as much as any change to the platform moved
``e2e_vs_dlt``.
``CM_BENCH_TRADEIN_REPEAT=N`` runs the platform and the peers N times alternating and
records medians. Uses its own database, dropped afterwards, and a feed server on port 8101.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from bench.pgdb import db_url as _db_url
from bench.pgdb import scratch_database

PORT = int(os.environ.get("CM_BENCH_FEED_PORT", "8101"))
ROWS = int(os.environ.get("CM_BENCH_TRADEIN_ROWS", "1000000"))
REPEAT = int(os.environ.get("CM_BENCH_TRADEIN_REPEAT", "1"))
REPO = Path(__file__).resolve().parent.parent
PEERS_PYTHON = Path(os.environ.get("CM_BENCH_PEERS_PYTHON") or REPO / ".venv-peers/bin/python")
CORE = "core_tradein_transactions"
BASE = f"http://127.0.0.1:{PORT}"


def _wait(url: str, seconds: float = 30) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"feed server at {url} did not start")


def _env(rows: int, work: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CM_DATA_DIR": str(work / f"data-{rows}"),
        "CM_PII_KEY": os.environ.get("CM_PII_KEY") or uuid.uuid4().hex * 2,
        "CM_FEED_BASE_URL": BASE,
        "CM_TRADEIN_ROWS_PER_MONTH": str(rows),
        "GX_ANALYTICS_ENABLED": "false",
    }
    env.pop("CM_FEED_TOKEN", None)
    return env


def _json_run(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[1:3]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process has used (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stages(db: str, env: dict[str, str], server: int) -> dict:
    """The platform's run in a child process (its peak memory is the pipeline's alone),
    with the CPU seconds it took (the extract's worker included) and the feed server took
    to serve it."""
    mine, served = _children_cpu_s(), _cpu_s(server)
    out = _json_run([sys.executable, "-m", "bench.tradein_stages", "--url", _db_url(db)], env)
    out["cpu_s"] = {"pipeline": _children_cpu_s() - mine, "feed_server": _cpu_s(server) - served}
    return out


def _peer(
    peer: str, db: str, env: dict[str, str], work: Path, server: int, *extra: str
) -> dict | None:
    """A peer's run, with the CPU seconds it took (its process and the children it waited
    for) and the feed server took to serve it, as :func:`_stages` records the platform's."""
    mine, served = _children_cpu_s(), _cpu_s(server)
    out = _peer_run(peer, db, env, work, *extra)
    if out is not None:
        out["cpu_s"] = {"peer": _children_cpu_s() - mine, "feed_server": _cpu_s(server) - served}
    return out


def _peer_run(peer: str, db: str, env: dict[str, str], work: Path, *extra: str) -> dict | None:
    if peer == "dlt":
        if not PEERS_PYTHON.exists():
            return None
        python = str(PEERS_PYTHON)
        url = _db_url(db, "postgresql").replace("postgres@", "postgres:bench@", 1)  # dlt wants one
    else:
        python, url = sys.executable, _db_url(db)
    argv = [python, str(REPO / "bench/tradein_peers.py"), peer, "--base", BASE, "--url", url,
            "--work", str(work / "dlt"), *extra]  # fmt: skip
    return _json_run(argv, env)


def _dump_core(db: str, work: Path) -> Path:
    csv = work / "rows.csv"
    dsn = _db_url(db, "postgresql")
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        open(csv, "wb") as f,
        conn.cursor().copy(f"copy (select * from {CORE}) to stdout csv") as copy,
    ):
        for data in copy:
            f.write(data)
    return csv


def _core_indexes() -> list[str]:
    """The core table's primary key and indexes (the feed spec's keys and indexes, as
    ``warehouse/schema.py`` declares them), as statements on a table ``{t}``."""
    from consumption_monitor.feeds.spec import load_feed
    from consumption_monitor.warehouse import schema

    core = schema.core(load_feed("tradein_transactions").stream("transactions"))

    def names(columns) -> str:
        return ", ".join(c.name for c in columns)

    return [
        f"alter table {{t}} add primary key ({names(core.primary_key.columns)})",
        *(f"create index on {{t}} ({names(index.columns)})" for index in core.indexes),
    ]


def _copy_bounds(db: str, csv: Path, keyed: bool = True) -> dict[str, float]:
    """psql \\copy of the loaded rows into a table with the core table's keys and indexes
    (``keyed``), and into an unindexed one followed by building the same indexes (seconds
    each)."""
    dsn = _db_url(db, "postgresql")
    indexes = _core_indexes()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("drop table if exists bound_keyed, bound_late")
        conn.execute(f"create table bound_late (like {CORE} including defaults)")
        if keyed:
            conn.execute(f"create table bound_keyed (like {CORE} including defaults)")
            for statement in indexes:
                conn.execute(statement.format(t="bound_keyed"))
    out: dict[str, float] = {}
    if keyed:
        start = time.perf_counter()
        subprocess.run(
            ["psql", dsn, "-q", "-c", f"\\copy bound_keyed from '{csv}' csv"], check=True
        )
        out["copy"] = time.perf_counter() - start
    start = time.perf_counter()
    script = [f"\\copy bound_late from '{csv}' csv", *(s.format(t="bound_late") for s in indexes)]
    subprocess.run(["psql", dsn, "-q", *(a for s in script for a in ("-c", s))], check=True)
    out["late_index"] = time.perf_counter() - start
    return out


def _bounds(db: str, work: Path, keyed: bool = True) -> dict[str, float]:
    """:func:`_copy_bounds` of the rows the round loaded, dumped for it and deleted after
    (a 10M dump is ~3.3 GB)."""
    csv = _dump_core(db, work)
    try:
        return _copy_bounds(db, csv, keyed)
    finally:
        csv.unlink()


def _round(rows: int, work: Path, db: str, env: dict[str, str], peers: bool, server: int) -> dict:
    """One round: the platform's first load, its reload, and (``peers``) the peers."""
    out: dict = {"first": _stages(db, env, server)}
    if peers:  # the 10M run measures the first load only (rate and memory)
        out["reload"] = _stages(db, env, server)  # the same period again: a partition swap
        out["fetch"] = _peer("fetch", db, env, work, server)
        out["dlt"] = _peer("dlt", db, env, work, server)
        out["dlt_merge"] = _peer("dlt", db, env, work, server, "--disposition", "merge")
        out["to_sql"] = _peer("to_sql", db, env, work, server)
        out["bounds"] = _bounds(db, work)
    else:  # PostgreSQL's own scaling at this size: the late-index bound alone (~1.5 min)
        out["bounds"] = _bounds(db, work, keyed=False)
    return out


def _measure(rows: int, work: Path, peers: bool, repeat: int) -> list[dict]:
    env = _env(rows, work)
    server = subprocess.Popen(
        [sys.executable, "-m", "cm_devtools", "feed-server", "--port", str(PORT),
         "--as-of", "2025-12-20", "--tradein-rows", str(rows)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(BASE)
        rounds = []
        for _ in range(repeat):
            with scratch_database("cm_bench_tradein") as db:
                rounds.append(_round(rows, work, db, env, peers, server.pid))
            shutil.rmtree(work / f"data-{rows}", ignore_errors=True)
            shutil.rmtree(work / "dlt", ignore_errors=True)
        return rounds
    finally:
        server.terminate()
        server.wait(timeout=10)


def _rate(rows: int | None, seconds: float | None) -> float | None:
    return rows / seconds if rows and seconds else None


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _rates(rounds: list[dict]) -> dict[str, float | None]:
    """Median rows/s of every figure over the rounds."""

    def each(pick) -> float | None:
        return _median([pick(r) for r in rounds])

    def peer(name: str):
        return lambda r: _rate(r[name]["rows"], r[name]["seconds"]) if r.get(name) else None

    rates = {
        stage: each(lambda r, s=stage: _rate(r["first"]["rows"], r["first"]["seconds"][s]))
        for stage in ("extract", "validate", "e2e")
    }
    rates["load"] = each(lambda r: _rate(r["first"]["loaded"], r["first"]["seconds"]["load"]))
    rates["reload_e2e"] = each(lambda r: _rate(r["reload"]["rows"], r["reload"]["seconds"]["e2e"]))
    rates["reload_load"] = each(
        lambda r: _rate(r["reload"]["loaded"], r["reload"]["seconds"]["load"])
    )
    for name in ("fetch", "dlt", "dlt_merge", "to_sql"):
        rates[name] = each(peer(name))
    for bound in ("copy", "late_index"):
        rates[bound] = each(
            lambda r, b=bound: (
                _rate(r["first"]["loaded"], r["bounds"][b]) if "bounds" in r else None
            )
        )
    return rates


def _round1(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a and b else None


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="cm-bench-tradein-") as tmp:
        work = Path(tmp)
        rounds = _measure(ROWS, work, peers=True, repeat=REPEAT)
        big = (
            _measure(10_000_000, work, peers=False, repeat=1)[0]
            if os.environ.get("CM_BENCH_TRADEIN_10M")
            else None
        )
    r = _rates(rounds)
    cpu = {
        name: _median([x["first"]["cpu_s"][name] for x in rounds])
        for name in ("pipeline", "feed_server")
    }
    # the whole run cannot end before every CPU second it needs is spent on the machine's
    # cores, however its stages overlap (PostgreSQL's own CPU during the load not counted)
    floor = (cpu["pipeline"] + cpu["feed_server"]) / (os.cpu_count() or 1)
    e2e_all = [x["first"]["seconds"]["e2e"] for x in rounds]
    e2e_s = _median(e2e_all)
    dlts = [x["dlt"] for x in rounds if x.get("dlt")]
    dlt_all = [d["seconds"] for d in dlts]
    dlt_cpu = {name: _median([d["cpu_s"][name] for d in dlts]) for name in ("peer", "feed_server")}
    # the same rows' CPU, the feed server's serving included on both sides: dlt's over ours
    dlt_cpu_s = dlt_cpu["peer"] + dlt_cpu["feed_server"] if dlts else None
    cpu_vs_dlt = _ratio(dlt_cpu_s, cpu["pipeline"] + cpu["feed_server"])
    peak = max(x["first"]["peak_pss_mb"] for x in rounds)
    rss = max(x["first"]["peak_rss_mb"] for x in rounds)
    big_load = _rate(big["first"]["loaded"], big["first"]["seconds"]["load"]) if big else None
    big_late = _rate(big["first"]["loaded"], big["bounds"]["late_index"]) if big else None
    not_10m = "not measured (CM_BENCH_TRADEIN_10M=1)"
    no_dlt = "not measured (no .venv-peers: make bench builds it)"

    def rows_s(name: str, key: str) -> dict:
        value = round(r[key]) if r[key] else None
        return {"name": f"tradein.{name}", "value": value, "unit": "rows/s"}

    records = [
        {"name": "tradein.rows", "value": rounds[0]["first"]["rows"], "unit": "rows"},
        {"name": "tradein.rounds", "value": len(rounds), "unit": "runs"},
        rows_s("extract_rows_s", "extract"),
        rows_s("validate_rows_s", "validate"),
        rows_s("load_rows_s", "load"),
        rows_s("e2e_rows_s", "e2e"),
        rows_s("reload_e2e_rows_s", "reload_e2e"),
        rows_s("reload_load_rows_s", "reload_load"),
        rows_s("fetch_rows_s", "fetch"),
        rows_s("dlt_rows_s", "dlt"),
        rows_s("dlt_merge_reload_rows_s", "dlt_merge"),
        rows_s("to_sql_rows_s", "to_sql"),
        rows_s("copy_rows_s", "copy"),
        rows_s("late_index_rows_s", "late_index"),
        {"name": "tradein.e2e_vs_dlt", "value": _ratio(r["e2e"], r["dlt"]), "unit": "ratio",
         "goal": ">= 1.0" if r["dlt"] else no_dlt},
        {"name": "tradein.e2e_vs_to_sql", "value": _ratio(r["e2e"], r["to_sql"]), "unit": "ratio",
         "goal": ">= 1.5"},
        {"name": "tradein.e2e_vs_fetch", "value": _ratio(r["e2e"], r["fetch"]), "unit": "ratio",
         "goal": ">= 0.6"},
        {"name": "tradein.load_vs_late_index", "value": _ratio(r["load"], r["late_index"]),
         "unit": "ratio", "goal": ">= 0.8"},
        {"name": "tradein.reload_vs_first", "value": _ratio(r["reload_e2e"], r["e2e"]),
         "unit": "ratio", "goal": ">= 0.9"},
        {"name": "tradein.load_rate_10m_vs_1m", "value": _ratio(big_load, r["load"]),
         "unit": "ratio", "goal": ">= 0.8" if big else not_10m},
        {"name": "tradein.late_index_rate_10m_vs_1m", "value": _ratio(big_late, r["late_index"]),
         "unit": "ratio", "goal": "" if big else not_10m},
        {"name": "tradein.load_vs_late_index_10m", "value": _ratio(big_load, big_late),
         "unit": "ratio", "goal": "" if big else not_10m},
        {"name": "tradein.load_vs_copy", "value": _ratio(r["load"], r["copy"]), "unit": "ratio",
         "goal": ">= 0.5"},
        {"name": "tradein.e2e_vs_copy", "value": _ratio(r["e2e"], r["copy"]), "unit": "ratio",
         "goal": ">= 0.2"},
        {"name": "tradein.peak_mb_1m", "value": peak, "unit": "MB", "goal": "< 1024"},
        {"name": "tradein.peak_mb_10m", "value": big["first"]["peak_pss_mb"] if big else None,
         "unit": "MB", "goal": "< 1024" if big else not_10m},
        {"name": "tradein.peak_rss_sum_mb_1m", "value": rss, "unit": "MB"},
        {"name": "tradein.cpu_s_pipeline", "value": round(cpu["pipeline"], 1), "unit": "s"},
        {"name": "tradein.cpu_s_feed_server", "value": round(cpu["feed_server"], 1), "unit": "s"},
        {"name": "tradein.e2e_s", "value": round(e2e_s, 1), "unit": "s"},
        {"name": "tradein.e2e_cpu_floor_s", "value": round(floor, 1), "unit": "s"},
        {"name": "tradein.cpu_floor_vs_fetch", "value": _ratio(_rate(ROWS, floor), r["fetch"]),
         "unit": "ratio"},
        {"name": "tradein.cpu_floor_vs_dlt", "value": _ratio(_rate(ROWS, floor), r["dlt"]),
         "unit": "ratio"},
        {"name": "tradein.e2e_s_min", "value": round(min(e2e_all), 1), "unit": "s"},
        {"name": "tradein.e2e_s_max", "value": round(max(e2e_all), 1), "unit": "s"},
        {"name": "tradein.dlt_s", "value": _round1(_median(dlt_all)), "unit": "s"},
        {"name": "tradein.dlt_s_min", "value": _round1(min(dlt_all, default=None)), "unit": "s"},
        {"name": "tradein.dlt_s_max", "value": _round1(max(dlt_all, default=None)), "unit": "s"},
        {"name": "tradein.cpu_s_dlt", "value": _round1(dlt_cpu["peer"]), "unit": "s"},
        {"name": "tradein.cpu_s_feed_server_dlt", "value": _round1(dlt_cpu["feed_server"]),
         "unit": "s"},
        {"name": "tradein.cpu_vs_dlt", "value": cpu_vs_dlt, "unit": "ratio"},
        {"name": "tradein.dlt_peak_rss_mb",
         "value": _median([d["peak_rss_mb"] for d in dlts]), "unit": "MB"},
        {"name": "tradein.to_sql_peak_rss_mb",
         "value": _median([x["to_sql"]["peak_rss_mb"] for x in rounds if x.get("to_sql")]),
         "unit": "MB"},
    ]  # fmt: skip
    return records


if __name__ == "__main__":
    for record in run():
        print(record)
