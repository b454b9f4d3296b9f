"""A local HTTP server that plays the district statistics bureau's retail feed.

It exists so that the ingestion DAGs, the validation suites and the demo have a real
network source to talk to: deterministic retail figures for 西区 (510403) plus injectable
faults (errors, throttling, slow and truncated responses, defective rows, revisions).
"""

from consumption_monitor.sample_server.faults import DEFECTS, FAULT_KINDS, FaultPlan, FaultRule
from consumption_monitor.sample_server.server import (
    FeedServer,
    add_cli_arguments,
    run_cli,
    serve_forever,
)

__all__ = [
    "DEFECTS",
    "FAULT_KINDS",
    "FaultPlan",
    "FaultRule",
    "FeedServer",
    "add_cli_arguments",
    "run_cli",
    "serve_forever",
]
