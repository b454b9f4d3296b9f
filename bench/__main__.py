"""Run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import importlib
import json
import platform
import sys
from pathlib import Path

BENCHMARKS = ["bench.dag_parse", "bench.tradein"]
RESULTS = Path(__file__).resolve().parent / "results.json"


def main(names: list[str]) -> int:
    records: list[dict] = []
    for module_name in names or BENCHMARKS:
        records.extend(importlib.import_module(module_name).run())
    width = max(len(r["name"]) for r in records)
    print(f"{'benchmark':<{width}}  {'value':>12}  unit  goal")
    for r in records:
        print(f"{r['name']:<{width}}  {r['value']!s:>12}  {r['unit']:<4}  {r.get('goal', '')}")
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "platform": platform.platform()},
                "records": records,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
