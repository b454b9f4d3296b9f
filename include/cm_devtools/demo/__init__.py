"""`make demo` / `make stop`: the whole platform on one machine, driven through Airflow.

Why this package exists: reviewers and bureau operators need a single command that brings up
the sample feed server and Airflow (``airflow standalone``: SQLite metadata, LocalExecutor,
embedded SQLite warehouse), runs every sample period *through the scheduler* - one Airflow
backfill, so each period is an ordinary DAG run in the UI - and leaves everything running for
browsing. ``demo --stop`` ends it; a second ``demo`` restarts cleanly without it.

Its modules, by role (callers import from them; this package re-exports only the ``cm demo``
entry points):

* ``cli`` - the options of ``cm demo`` and ``run_cli``, which prints the result;
* ``driver`` - ``run_demo``: the eight steps, one function each;
* ``common`` - ``Layout`` (where the demo keeps its state), the DAG ids, ``DemoError``;
* ``processes`` - spawning, pid files, the process table, stopping, ports;
* ``airflow_home`` - airflow.cfg, its secrets, the admin password, the processes' environment;
* ``rest`` - the REST API client, health polling, waiting for a DAG to be parsed;
* ``backfill`` - periods to logical dates, backfill submission, runs in flight;
* ``runs`` - run tallies, progress lines, manual runs, the catch-up run, failures;
* ``data`` - the feeds, their sample inputs and the warehouse;
* ``console`` and ``summary`` - what the operator sees while it runs and at the end.

``topology`` (the native Celery topology) reuses these modules instead of a copy.

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

from cm_devtools.demo.cli import add_cli_arguments, run_cli

__all__ = ["add_cli_arguments", "run_cli"]
