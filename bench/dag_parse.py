"""DAG parse time per file, Airflow's own import excluded (goal: each < 0.2 s, all < 1 s)."""

from __future__ import annotations

from pathlib import Path

from cm_devtools import dagparse

DAGS = Path(__file__).resolve().parent.parent / "dags"
REPEATS = 3


def run() -> list[dict]:
    per_file = {}
    for path in sorted(DAGS.glob("*.py")):
        per_file[path.name] = min(dagparse.measure(path)["seconds"] for _ in range(REPEATS))
    records = [
        {"name": f"dag_parse.{name}", "value": round(seconds, 4), "unit": "s"}
        for name, seconds in per_file.items()
    ]
    records.append(
        {
            "name": "dag_parse.max_s",
            "value": round(max(per_file.values()), 4),
            "unit": "s",
            "goal": "< 0.2",
        }
    )
    records.append(
        {
            "name": "dag_parse.total_s",
            "value": round(sum(per_file.values()), 4),
            "unit": "s",
            "goal": "< 1.0",
        }
    )
    return records
