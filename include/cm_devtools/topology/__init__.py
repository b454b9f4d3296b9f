"""The production topology, natively: Airflow with CeleryExecutor on PostgreSQL and Redis.

Why this package exists: ``docker-compose.yaml`` and the Helm values describe a distributed
Airflow (API server, scheduler, DAG processor, Celery workers, Redis broker, PostgreSQL for
the metadata and the warehouse), but no Docker engine runs here or in CI. This package starts
the same components as plain processes on the local PostgreSQL and Redis, each in databases
and a Redis key prefix of its own, so the native Celery test and the backfill benchmark prove
the topology for real. It reuses the demo's machinery (``cm_devtools.demo``: configuration
merge, process spawning and stopping, the REST API client, backfill submission and run
tracking) instead of a copy.

Its modules (callers import from them):

* ``services`` - the local PostgreSQL server and Redis database, databases and key prefixes;
* ``settings`` - ``StateLayout`` and the airflow.cfg options of the Celery topology;
* ``cluster`` - ``Topology``: start every component, wait until healthy, stop and clean up;
* ``workload`` - the feed backfill, the snapshot runs and the failures, through the REST API;
* ``compare`` - the embedded default's warehouse for the same data, and warehouse digests.

Decisions (2-core reference machine):

* Two ``airflow celery worker`` processes, ``WORKER_CONCURRENCY`` task slots each; they skip
  the log-serving sub-process (both would bind the same port) and write task logs to the
  shared log folder, which the API server reads.
* Great Expectations takes 10-17 s to import. The workers import it (and pandas, SQLAlchemy)
  once at start-up through ``[celery] celery_config_options`` pointing at
  ``consumption_monitor.orchestration.celery_config`` with ``CM_CELERY_PRELOAD=1`` in their
  environment:
  the prefork pool children and the task processes forked from them inherit the modules.
* No triggerer: no task of the feed DAGs defers. The compose file still has one.
* The snapshot DAG (``indicator_snapshots``) stays paused during the feed backfill, so the
  feed loads queue no asset events for it; afterwards ``workload.run_snapshots`` unpauses it
  and triggers one manual run per period, as an operator recomputing the snapshots would.
"""
