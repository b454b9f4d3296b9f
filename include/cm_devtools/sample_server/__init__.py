"""A local HTTP server that plays the district's statistics feeds.

It exists so that the ingestion DAGs, the validation suites and the demo have a real
network source to talk to: deterministic figures for 西区 (510403) — retail, online retail,
employment, 12315 complaints — plus injectable faults (errors, throttling, slow and
truncated responses, defective rows, revisions).
"""

from cm_devtools.sample_server.faults import (
    FAULT_KINDS,
    FaultPlan,
    FaultRule,
    known_defects,
)
from cm_devtools.sample_server.server import (
    FeedServer,
    add_cli_arguments,
    run_cli,
    serve_forever,
)

__all__ = [
    "FAULT_KINDS",
    "FaultPlan",
    "FaultRule",
    "FeedServer",
    "add_cli_arguments",
    "known_defects",
    "run_cli",
    "serve_forever",
]
