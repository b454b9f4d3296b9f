"""The warehouse: one schema for SQLite (embedded default) and PostgreSQL (production).

Layers, by table-name prefix so that both databases name them alike:
``raw_`` what arrived (payload registry; the bytes are in the archive), ``stg_`` typed rows
of every accepted batch (all versions), ``core_`` the current version per period,
``mart_`` analyst views and indicator snapshots; ``audit_`` batches, runs, validation
results and quarantine.
"""
