"""The data dictionary for analysts, generated from the schema into ``docs/``.

Tables come from the SQLAlchemy metadata (their comments, column types and comments, and
the units the feed specs declare); views from a freshly migrated SQLite warehouse (their
real columns) documented by ``sql/marts/_views.yaml``. A column a view passes through from
a core table keeps that table's description, so nothing is written twice. The output is
deterministic; ``tests/test_analysts.py`` checks the committed file is up to date.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Table, inspect

from consumption_monitor.common import config
from consumption_monitor.feeds.spec import list_feeds, load_feed

DICTIONARY_FILE = config.REPO_DIR / "docs" / "data-dictionary.md"
LAYERS = (  # prefix, title
    ("raw_", "raw：原始数据登记"),
    ("stg_", "staging：每个已接受批次的类型化数据"),
    ("core_", "core：每期当前版本"),
    ("ref_", "reference：参考数据"),
    ("mart_", "marts：分析视图与指标快照"),
    ("audit_", "audit：批次、运行、校验与隔离"),
)
ANALYST_NOTE = (
    "分析人员只读角色 `cm_analyst`（`cm analyst-role`）可读 marts 层全部视图、"
    "`mart_indicator_snapshot` 与 `ref_` 参考表；不能读 raw、staging、core、audit 层"
    "（含隔离数据和个人信息相关字段）。"
)


def _units() -> dict[tuple[str, str], str]:
    """(table, column) -> unit declared in the feed specs."""
    out: dict[tuple[str, str], str] = {}
    for feed in list_feeds():
        for stream in load_feed(feed).streams:
            for col in stream.columns:
                if col.unit:
                    for prefix in ("stg_", "core_"):
                        out[(f"{prefix}{stream.table}", col.name)] = col.unit
            if stream.rollup:  # sums and maxima keep the unit of what they aggregate
                table = f"core_{stream.rollup.table}"
                for name in stream.rollup.by:
                    if (f"core_{stream.table}", name) in out:
                        out[(table, name)] = out[(f"core_{stream.table}", name)]
                for m in stream.rollup.measures:
                    if m.column and (f"core_{stream.table}", m.column) in out:
                        out[(table, m.name)] = out[(f"core_{stream.table}", m.column)]
    return out


def view_docs(sql_dir: Path | None = None) -> dict[str, Any]:
    return yaml.safe_load(
        (sql_dir or config.sql_dir()).joinpath("marts", "_views.yaml").read_text()
    )


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def _table_section(table: Table, units: dict[tuple[str, str], str]) -> list[str]:
    lines = [f"### `{table.name}`", "", _cell(table.comment), ""]
    lines += ["| 列 | 类型 | 可空 | 单位 | 说明 |", "|---|---|---|---|---|"]
    for col in table.columns:
        key = " (键)" if col.primary_key else ""
        lines.append(
            f"| `{col.name}`{key} | {col.type} | {'是' if col.nullable else '否'} | "
            f"{units.get((table.name, col.name), '')} | {_cell(col.comment)} |"
        )
    return [*lines, ""]


def column_descriptions(tables: list[Table]) -> dict[str, str]:
    """Column name -> description from core tables (what views pass through)."""
    out: dict[str, str] = {}
    for table in tables:
        if table.name.startswith("core_"):
            for col in table.columns:
                if col.comment:
                    out.setdefault(col.name, col.comment)
    return out


def view_columns(url: str | None = None) -> dict[str, list[str]]:
    """Every view of a migrated warehouse and its columns (a temporary SQLite one)."""
    from consumption_monitor.warehouse.db import make_engine
    from consumption_monitor.warehouse.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite:///{Path(tmp) / 'dictionary.db'}")
        try:
            upgrade(engine=engine)
            insp = inspect(engine)
            return {v: [c["name"] for c in insp.get_columns(v)] for v in insp.get_view_names()}
        finally:
            engine.dispose()


def undocumented(views: dict[str, list[str]], docs: dict[str, Any], tables: list[Table]):
    """(view, column) pairs without any description, and views without a description."""
    common, passed = docs.get("common_columns") or {}, column_descriptions(tables)
    missing: list[tuple[str, str | None]] = []
    for view, columns in sorted(views.items()):
        entry = (docs.get("views") or {}).get(view) or {}
        if not entry.get("description"):
            missing.append((view, None))
        own = entry.get("columns") or {}
        missing += [
            (view, c) for c in columns if c not in own and c not in common and c not in passed
        ]
    return missing


def render_dictionary(views: dict[str, list[str]] | None = None) -> str:
    from consumption_monitor.warehouse import schema

    views = views if views is not None else view_columns()
    docs = view_docs()
    tables = sorted(schema.metadata.tables.values(), key=lambda t: t.name)
    common, passed = docs.get("common_columns") or {}, column_descriptions(tables)
    units = _units()
    lines = [
        "# 数据字典 · Data dictionary",
        "",
        "Generated by `cm docs` from the warehouse schema (`warehouse/schema.py`, feed specs) "
        "and `sql/marts/_views.yaml`; do not edit by hand. 金额单位见“单位”列（万元为主）。",
        "",
        ANALYST_NOTE,
        "",
    ]
    for prefix, title in LAYERS:
        names = [t for t in tables if t.name.startswith(prefix)]
        layer_views = sorted(v for v in views if v.startswith(prefix))
        if not names and not layer_views:
            continue
        lines += [f"## {title}", ""]
        for view in layer_views:
            entry = (docs.get("views") or {}).get(view) or {}
            own = entry.get("columns") or {}
            lines += [f"### `{view}`（视图）", "", _cell(entry.get("description")), ""]
            lines += ["| 列 | 说明 |", "|---|---|"]
            for col in views[view]:
                text = own.get(col) or common.get(col) or passed.get(col, "")
                lines.append(f"| `{col}` | {_cell(text)} |")
            lines.append("")
        for table in names:
            lines += _table_section(table, units)
    return "\n".join(lines).rstrip() + "\n"


def write_dictionary(path: Path = DICTIONARY_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    from consumption_monitor.common.files import write_atomic

    write_atomic(path, render_dictionary())
    return path
