"""Load the JSON suites from ``expectations/`` (the suites are data, not code), and add
the checks every stream gets from its spec (``spec_expectations``)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from consumption_monitor.common import config
from consumption_monitor.feeds.spec import StreamSpec

SEVERITIES = ("critical", "warning", "info")
LENGTH_CHECK = "expect_column_value_lengths_to_be_between"


class SuiteError(ValueError):
    """A suite file that cannot be used."""


def suite_path(name: str, directory: Path | None = None) -> Path:
    return (directory or config.expectations_dir()) / f"{name}.json"


def read_suite(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The suite as a dict, checked for what the platform relies on."""
    path = suite_path(name, directory)
    if not path.exists():
        raise SuiteError(f"no expectation suite {name!r} at {path}")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("name") != name:
        raise SuiteError(f"{path}: suite name {doc.get('name')!r} does not match the file")
    for i, exp in enumerate(doc.get("expectations", [])):
        if exp.get("severity") not in SEVERITIES:
            raise SuiteError(f"{path}: expectation #{i} ({exp.get('type')}) needs a severity")
        if not (exp.get("meta") or {}).get("description"):
            raise SuiteError(f"{path}: expectation #{i} ({exp.get('type')}) needs a description")
    return doc


def build_suite(doc: dict[str, Any]):
    """A Great Expectations ExpectationSuite from the JSON document."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    for i, raw in enumerate(doc["expectations"]):
        meta = dict(raw.get("meta") or {})
        meta.setdefault("index", i)  # stable identity of the expectation inside the suite
        cfg = ExpectationConfiguration(
            type=raw["type"], kwargs=raw["kwargs"], meta=meta, severity=raw["severity"]
        )
        expectations.append(cfg.to_domain_obj())
    return gx.ExpectationSuite(name=doc["name"], expectations=expectations, meta=doc.get("meta"))


def spec_expectations(
    stream: StreamSpec, start: int, present: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The checks of the stream's spec, after the suite file's (``start``: their count).

    Every string column's text may have at most ``max_length`` characters (pandas counts
    characters, as PostgreSQL's varchar(n) does; SQLite would store anything): critical
    with ``mostly: 0``, so an over-long row is quarantined and the batch still loads.
    Only for the columns ``present`` in the frame: a column missing from a batch is the
    suite file's business (``expect_column_to_exist``), not a second failure here. The
    index of each check is fixed by the column's place in the spec, whatever is present,
    so chunks of one batch merge by index."""
    out = []
    for i, column in enumerate(c for c in stream.columns if c.max_length):
        if present is not None and column.name not in present:
            continue
        name = f"{column.label or column.description or column.name}（{column.name}）"
        out.append(
            {
                "type": LENGTH_CHECK,
                "kwargs": {"column": column.name, "max_value": column.max_length, "mostly": 0},
                "severity": "critical",
                "meta": {
                    "index": start + i,
                    "description": f"{name}不超过 {column.max_length} 个字符（超长的行隔离）",
                    "source": "spec",
                },
            }
        )
    return out


def stream_suite(stream: StreamSpec, present: Collection[str] | None = None) -> dict[str, Any]:
    """The stream's suite document: its file plus the checks generated from its spec."""
    doc = read_suite(stream.suite_name)
    generated = spec_expectations(stream, len(doc["expectations"]), present)
    return {**doc, "expectations": [*doc["expectations"], *generated]}
