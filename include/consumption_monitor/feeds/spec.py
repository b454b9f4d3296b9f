"""Feed specs: what a feed is, as data (Singer/Meltano style), loaded from ``specs/*.yaml``.

A feed has a name, a period grain, a source and one or more streams. Each stream declares
its endpoint, paginator, business keys, columns (type, unit, required) and the derived check
columns its Great Expectations suite relies on. Everything a new feed needs that is not in
this file is a spec, a suite under ``expectations/`` and a migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

SPEC_DIR = Path(__file__).resolve().parent / "specs"
# libyaml's safe loader when PyYAML has it: DAG files read a spec at parse time
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ColumnType = Literal["string", "decimal", "integer", "date", "boolean"]
COLUMN_TYPES: tuple[str, ...] = ("string", "decimal", "integer", "date", "boolean")
# characters a string column holds when its spec states no ``length`` (every shipped spec
# states one; tests/test_bad_input_text.py checks it): the warehouse column is
# String(max_length) and the suite quarantines longer text (validation/suites.py)
DEFAULT_TEXT_LENGTH = 255
# What the warehouse's number columns hold (warehouse/schema.py builds them from these):
# decimals are NUMERIC(18, 4), below 10^14 in absolute value; integers are INTEGER, 32 bits
# on PostgreSQL. Typing flags a value beyond them as unparseable in its row
# (feeds/frames.py), as PostgreSQL's COPY would otherwise refuse the whole load.
DECIMAL_PRECISION, DECIMAL_SCALE = 18, 4
INTEGER_BITS = 32


class SpecError(ValueError):
    """A feed spec that cannot be used."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColumnType = "string"
    required: bool = False
    unit: str | None = None
    description: str = ""
    length: int | None = None  # max characters of a string column (see max_length)
    label: str | None = None  # header text in file templates (file sources only)
    choices: tuple[str, ...] = ()  # code list: template drop-down and suite value set
    # An opaque identifier (order number, pseudonym): compared and indexed byte by byte,
    # COLLATE "C" on PostgreSQL (warehouse/schema.py). Why: under a libc locale such as
    # C.UTF-8, PostgreSQL 15 sorts text through strcoll without abbreviated keys; a 1M-row
    # trade-in month's three index builds took 5.5 s, 3.9 s with its two identifier
    # columns in "C". Byte order is code-point order: only the sorting of letters changes
    # under a language locale, which means nothing for an identifier.
    identifier: bool = False

    @property
    def max_length(self) -> int | None:
        """Characters a string value may have (None for other types): one value for the
        warehouse column, the suite's length check and the loader's."""
        if self.type != "string":
            return None
        return self.length or DEFAULT_TEXT_LENGTH


@dataclass(frozen=True)
class PaginatorSpec:
    """``page``: page/page_size query params and a next-page field; ``cursor``: opaque cursor."""

    kind: Literal["page", "cursor", "none"] = "none"
    page_param: str = "page"
    size_param: str = "page_size"
    page_size: int = 100
    cursor_param: str = "cursor"
    next_field: str = "next_page"
    max_pages: int = 10_000


MIB = 1024 * 1024


@dataclass(frozen=True)
class ExtractLimits:
    """What one extraction may take, whatever the source sends (``limits:`` in a spec).

    A breach rejects the period with a clear reason and an alert; nothing of it loads.
    The defaults fit a district's monthly statistics with a wide margin; a transaction
    feed raises the batch limits (``tradein_transactions.yaml``)."""

    max_page_bytes: int = 64 * MIB  # one page (a 200 MB page is an error, not data)
    max_batch_bytes: int = 2048 * MIB  # all pages of all streams of one period
    max_batch_pages: int = 20_000  # all pages of all streams of one period
    deadline_s: float = 2 * 3600.0  # the whole extraction, a slow trickle included
    # one dropped workbook (file sources; far above a real ledger: 2,000 rows of 6-10
    # columns are < 1 MB unzipped); a breach rejects that file only
    max_file_bytes: int = 5_000_000
    max_uncompressed_bytes: int = 20_000_000  # from the zip directory, before unpacking
    max_rows_per_sheet: int = 5_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise SpecError(f"limits.{name} must be positive")


@dataclass(frozen=True)
class DeriveSpec:
    """A derived check column to compute before the suite runs, with its parameters.

    Written in the spec as a bare name (``uscc_check``) or as a mapping with parameters
    (``{name: date_in_period, column: event_date}``), so one generic derivation serves
    every feed instead of a copy per feed.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in self.params
        }


def _derive(raw: str | dict[str, Any], where: str) -> DeriveSpec:
    if isinstance(raw, str):
        return DeriveSpec(raw)
    if not isinstance(raw, dict) or "name" not in raw:
        raise SpecError(f"{where}: a derive entry is a name or a mapping with a name")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k != "name"}
    return DeriveSpec(str(raw["name"]), tuple(sorted(params.items())))


@dataclass(frozen=True)
class PiiSpec:
    """A personal-data field of the source, replaced in the extract step by a keyed hash.

    ``field`` (e.g. ``consumer_id``) never leaves the extract step: the page written to the
    archive carries ``pseudonym`` (64 hex HMAC-SHA256) and ``valid`` (the identifier's
    check, e.g. GB 11643 for a resident ID) instead; both are declared columns.
    """

    field: str
    kind: Literal["resident_id", "mobile"]
    pseudonym: str
    valid: str


@dataclass(frozen=True)
class CheckSpec:
    """A check that needs more than one chunk or the warehouse (history), by name with
    parameters, evaluated after the chunked suite run (``validation/history.py``)."""

    name: str
    severity: str = "critical"
    description: str = ""
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in self.params
        }


def _check(raw: dict[str, Any]) -> CheckSpec:
    fixed = {k: raw[k] for k in ("name", "severity", "description") if k in raw}
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k not in fixed}
    return CheckSpec(**fixed, params=tuple(sorted(params.items())))


ROLLUP_AGGREGATES = ("count", "sum", "max")


@dataclass(frozen=True)
class RollupMeasure:
    """One column of a rollup: ``count`` of rows, or ``sum``/``max`` of a stream column."""

    name: str
    agg: Literal["count", "sum", "max"]
    column: str | None = None
    description: str = ""


@dataclass(frozen=True)
class RollupSpec:
    """A per-period pre-aggregate of a transaction-scale stream, ``core_<table>``: one row
    per combination of ``by`` with the ``measures``. The loader rebuilds a period's rows in
    the transaction that loads the period, so it always equals the aggregate of the core
    rows; marts and snapshots read it instead of millions of rows. Only measures that
    re-aggregate exactly (counts, sums and maxima) are allowed."""

    table: str
    by: tuple[str, ...]
    measures: tuple[RollupMeasure, ...]
    description: str = ""


def _rollup(raw: dict[str, Any], columns: set[str], where: str) -> RollupSpec:
    raw = dict(raw)
    rollup = RollupSpec(
        by=tuple(raw.pop("by")),
        measures=tuple(RollupMeasure(**m) for m in raw.pop("measures")),
        **raw,
    )
    for m in rollup.measures:
        if m.agg not in ROLLUP_AGGREGATES:
            raise SpecError(f"{where}: rollup measure {m.name!r} has unknown agg {m.agg!r}")
        if (m.agg == "count") != (m.column is None):
            raise SpecError(f"{where}: rollup measure {m.name!r}: a column for sum/max only")
    unknown = [c for c in (*rollup.by, *(m.column for m in rollup.measures)) if c]
    unknown = [c for c in unknown if c not in columns]
    if unknown:
        raise SpecError(f"{where}: rollup columns {unknown} are not columns")
    return rollup


@dataclass(frozen=True)
class StreamSpec:
    name: str
    table: str  # base name of the warehouse tables: stg_<table>, core_<table>
    path: str
    keys: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    paginator: PaginatorSpec = field(default_factory=PaginatorSpec)
    records_field: str = "data"
    total_field: str | None = "total"
    unit_field: str | None = "unit"
    derive: tuple[DeriveSpec, ...] = ()
    description: str = ""
    # Transaction-scale streams: personal-data fields pseudonymised at extract, validation
    # and load in chunks of ``chunk_rows`` (None: the whole period at once), no staging
    # copy (the archive is the replayable history), history checks beside the suite, and
    # the column quarantine listings group by (``audit_key``, e.g. the enterprise USCC).
    pii: tuple[PiiSpec, ...] = ()
    chunk_rows: int | None = None
    # Consecutive chunks checked by one suite run, up to this many rows (None: one run a
    # chunk). Typing, spooling and loading stay per chunk (``validation/parallel.py``).
    check_rows: int | None = None
    staging: bool = True
    history_checks: tuple[CheckSpec, ...] = ()
    audit_key: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()  # extra core indexes (history checks' lookups)
    rollup: RollupSpec | None = None  # per-period pre-aggregate the loader maintains
    # PostgreSQL: core_<table> is partitioned by period (one partition a period, swapped in
    # whole by each load); only for ``staging: false`` streams. SQLite keeps one table.
    partitioned: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def suite_name(self) -> str:
        return self.table


@dataclass(frozen=True)
class RepullSpec:
    """Re-pull a period while its rows are still open (issue 15 §4: a 12315 month is pulled
    again until none of its cases is 办理中; its rates are provisional meanwhile).
    ``values`` of ``column`` in ``stream`` mark an open row; periods older than
    ``max_months`` before the newest loaded one are no longer re-pulled (and say so)."""

    stream: str
    column: str
    values: tuple[str, ...]
    max_months: int = 12


def _repull(raw: dict[str, Any] | None, feed: str) -> RepullSpec | None:
    if not raw:
        return None
    raw = dict(raw)
    repull = RepullSpec(
        stream=raw.pop("stream"),
        column=raw.pop("column"),
        values=tuple(str(v) for v in raw.pop("values")),
        max_months=int(raw.pop("max_months", 12)),
    )
    if raw:
        raise SpecError(f"feed {feed}: unknown repull keys {sorted(raw)}")
    return repull


@dataclass(frozen=True)
class FeedSpec:
    name: str
    title: str
    grain: Literal["month"]
    period_field: str
    unit: str | None
    source_kind: Literal["http", "file"]
    connection_id: str
    streams: tuple[StreamSpec, ...]
    source_options: dict[str, Any] = field(default_factory=dict)  # kind-specific settings
    release_day: int = 15
    first_period: str = "2024-01"
    published_months: tuple[int, ...] = tuple(range(1, 13))
    description: str = ""
    # Airflow tags of the feed's DAG besides those it always has (see
    # ``orchestration.feed_dag``: its measures come from the measure catalog, not from here)
    tags: tuple[str, ...] = ()
    # when a period is due: {day: N} or {workday: N} of the following month (alerts/lateness)
    due: dict[str, int] = field(default_factory=dict)
    limits: ExtractLimits = field(default_factory=ExtractLimits)
    repull: RepullSpec | None = None  # periods pulled again while rows are open

    @property
    def chunked(self) -> bool:
        """Streams processed in bounded chunks (transaction-scale feeds)."""
        return any(s.chunk_rows for s in self.streams)

    @property
    def has_pii(self) -> bool:
        return any(s.pii for s in self.streams)

    def stream(self, name: str) -> StreamSpec:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(f"feed {self.name} has no stream {name!r}")


def _column(raw: dict[str, Any], where: str) -> ColumnSpec:
    raw = dict(raw)
    raw["choices"] = tuple(raw.get("choices", ()))
    col = ColumnSpec(**raw)
    if col.type not in COLUMN_TYPES:
        raise SpecError(f"{where}: column {col.name!r} has unknown type {col.type!r}")
    if col.identifier and col.type != "string":
        raise SpecError(f"{where}: column {col.name!r}: only a string column is an identifier")
    if col.length is not None and (
        col.type != "string" or not isinstance(col.length, int) or col.length < 1
    ):
        raise SpecError(f"{where}: column {col.name!r}: length is a positive integer of a string")
    return col


def _stream(raw: dict[str, Any], feed: str) -> StreamSpec:
    where = f"feed {feed}, stream {raw.get('name')}"
    # a YAML alias of a shared column list may appear as one nested item: splice it in
    flat: list[dict[str, Any]] = []
    for item in raw.pop("columns"):
        flat.extend(item if isinstance(item, list) else [item])
    columns = tuple(_column(c, where) for c in flat)
    rollup = raw.pop("rollup", None)
    paginator = PaginatorSpec(**raw.pop("paginator", {}))
    stream = StreamSpec(
        columns=columns,
        paginator=paginator,
        keys=tuple(raw.pop("keys")),
        derive=tuple(_derive(d, where) for d in raw.pop("derive", ())),
        pii=tuple(PiiSpec(**p) for p in raw.pop("pii", ())),
        history_checks=tuple(_check(c) for c in raw.pop("history_checks", ())),
        indexes=tuple(tuple(i) for i in raw.pop("indexes", ())),
        rollup=_rollup(rollup, {c.name for c in columns}, where) if rollup else None,
        **raw,
    )
    for name in ("chunk_rows", "check_rows"):
        value = getattr(stream, name)
        if value is not None and (type(value) is not int or value < 1):
            raise SpecError(f"{where}: {name} must be a positive integer")
    if stream.check_rows and not stream.chunk_rows:
        raise SpecError(f"{where}: check_rows groups chunks: it needs chunk_rows")
    names = set(stream.column_names)
    missing = [k for k in stream.keys if k not in names]
    if missing:
        raise SpecError(f"{where}: keys {missing} are not columns")
    return stream


def _limits(raw: dict[str, Any], feed: str | None) -> ExtractLimits:
    unknown = set(raw) - set(ExtractLimits.__dataclass_fields__)
    if unknown:
        raise SpecError(f"feed {feed}: unknown limits {sorted(unknown)}")
    return ExtractLimits(**raw)


def parse_feed(raw: dict[str, Any]) -> FeedSpec:
    # ``x-`` keys hold YAML anchors shared by streams (code lists, common columns)
    raw = {k: v for k, v in raw.items() if not k.startswith("x-")}
    if "measures" in raw:
        raise SpecError(
            f"feed {raw.get('name')}: a spec does not list measures; the measure catalog's "
            "KPIs name their feed (indicators/measures.yaml)"
        )
    source = dict(raw.pop("source"))
    streams = tuple(_stream(dict(s), raw["name"]) for s in raw.pop("streams"))
    feed = FeedSpec(
        source_kind=source.pop("kind"),
        connection_id=source.pop("connection", "cm_feed"),
        source_options=source,
        streams=streams,
        published_months=tuple(raw.pop("published_months", range(1, 13))),
        tags=tuple(str(t) for t in raw.pop("tags", ())),
        limits=_limits(raw.pop("limits", None) or {}, raw.get("name")),
        repull=_repull(raw.pop("repull", None), raw.get("name")),
        **raw,
    )
    for stream in feed.streams:
        if feed.period_field not in stream.column_names:
            raise SpecError(f"feed {feed.name}: stream {stream.name} lacks {feed.period_field}")
        if stream.rollup and feed.period_field not in stream.rollup.by:
            raise SpecError(f"feed {feed.name}: the rollup of {stream.name} is not per period")
        if stream.partitioned and (stream.staging or feed.period_field not in stream.keys):
            raise SpecError(
                f"feed {feed.name}: partitioned {stream.name} needs staging: false and "
                f"{feed.period_field} in its keys"
            )
    if feed.repull and feed.repull.column not in feed.stream(feed.repull.stream).column_names:
        raise SpecError(f"feed {feed.name}: repull column {feed.repull.column} is not a column")
    return feed


@cache
def load_feed(name: str) -> FeedSpec:
    path = SPEC_DIR / f"{name}.yaml"
    if not path.exists():
        raise SpecError(f"unknown feed {name!r}: no spec at {path}")
    return parse_feed(yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER))


def list_feeds() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))
