"""Development tools of the consumption monitor: the sample feed server, the demo driver,
the native production topology, alert preview, sample ledgers and DAG-parse measuring.

Nothing in ``consumption_monitor`` (what production runs) imports this package.
"""
