"""Load the JSON suites from ``expectations/`` (the suites are data, not code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consumption_monitor.common import config

SEVERITIES = ("critical", "warning", "info")


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
        meta["index"] = i  # stable identity of the expectation inside the suite
        cfg = ExpectationConfiguration(
            type=raw["type"], kwargs=raw["kwargs"], meta=meta, severity=raw["severity"]
        )
        expectations.append(cfg.to_domain_obj())
    return gx.ExpectationSuite(name=doc["name"], expectations=expectations, meta=doc.get("meta"))
