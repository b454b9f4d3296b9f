"""Alerts on failed data checks, late feeds and recoveries.

``message`` holds what an alert says (one structure, rendered per channel), ``compose``
builds alerts from what the warehouse recorded, ``channels`` posts them to group-chat robots
and e-mail, ``store`` deduplicates and records them (``audit_alert``), and ``service``
decides, sends and records on plain arguments (feed, period, error, a ``RunContext``). The
Airflow side (notifier classes, reading a task's context) is in ``orchestration``; nothing
here imports it.
"""
