"""What every DAG of the package shares: default task arguments and the common tag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

PACKAGE_TAG = "consumption-monitor"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "区统计局",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}
