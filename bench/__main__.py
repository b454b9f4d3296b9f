"""Run benchmarks, print a table, write bench/results.json.

``python -m bench`` runs the default set (``make bench``); ``python -m bench backfill`` (or
``bench.backfill``) runs the named ones only. Records are merged into an existing
results.json by name, so a slow benchmark run on its own does not erase the others.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from pathlib import Path

BENCHMARKS = ["bench.dag_parse", "bench.tradein", "bench.snapshot"]  # ~8 min in all
SLOW_BENCHMARKS = ["bench.backfill"]  # selectable by name only: tens of minutes
RESULTS = Path(__file__).resolve().parent / "results.json"


def _module_name(name: str) -> str:
    return name if name.startswith("bench.") else f"bench.{name}"


def _previous_records() -> list[dict]:
    try:
        return list(json.loads(RESULTS.read_text(encoding="utf-8"))["records"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def main(names: list[str]) -> int:
    records: list[dict] = []
    for module_name in [_module_name(n) for n in names] or BENCHMARKS:
        records.extend(importlib.import_module(module_name).run())
    width = max(len(r["name"]) for r in records)
    print(f"{'benchmark':<{width}}  {'value':>12}  unit  goal")
    for r in records:
        print(f"{r['name']:<{width}}  {r['value']!s:>12}  {r['unit']:<4}  {r.get('goal', '')}")
    fresh = {r["name"] for r in records}
    merged = [r for r in _previous_records() if r.get("name") not in fresh] + records
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                },
                "records": merged,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
