"""Alerts on failed data checks, late feeds and recoveries.

``message`` holds what an alert says (one structure, rendered per channel), ``compose``
builds alerts from what the warehouse recorded, ``channels`` posts them to group-chat robots
and e-mail, ``store`` deduplicates and records them (``audit_alert``), ``service`` ties these
to Airflow callbacks, and ``notifiers`` holds the light Airflow notifier classes the DAGs
attach (nothing heavy is imported at DAG parse time).
"""
