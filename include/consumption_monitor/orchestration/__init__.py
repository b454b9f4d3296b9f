"""The Airflow glue, and the only part of the package that reads an Airflow context.

- ``context``: a task's or callback's context → the period, the ``RunContext``, "today";
- ``assets``: the feeds' Assets and what their events' ``extra`` say;
- ``defaults``: default task arguments and the package tag;
- ``feed_dag``, ``catchup_dag``, ``snapshot_dag``, ``lateness_dag``: the DAG factories the
  files in ``dags/`` call;
- ``notifiers``: the alert callbacks attached to the feed DAGs' tasks;
- ``celery_config``: the Celery workers' settings.

Everything else takes plain arguments. Modules imported by DAG files at parse time import
only ``airflow.sdk`` and light modules (specs, catalog); the pipeline is imported in tasks.
"""
