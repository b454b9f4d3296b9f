"""Measure how long a DAG file takes to parse, Airflow's own import excluded.

Each file is parsed in a fresh interpreter that has already imported what Airflow itself
loads for any TaskFlow DAG, so the figure is the cost the file adds. Used by the DAG
integrity test (no heavy imports, a generous budget) and by the benchmark (the 0.2 s goal).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

_PROBE = r"""
import importlib.util, json, sys, time
import airflow.sdk
from airflow.sdk import CronDataIntervalTimetable, dag, task  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
import pendulum  # noqa: F401
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "new_modules": sorted(set(sys.modules) - before)}))
"""


def measure(dag_file: Path, *, timeout: float = 120) -> dict[str, Any]:
    """``{"seconds": float, "new_modules": [...]}`` for one DAG file."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
