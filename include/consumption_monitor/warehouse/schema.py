"""Table definitions. Feed tables are derived from the feed specs, so a new stream's
``stg_``/``core_`` tables follow its declared columns and keys; Alembic migrations freeze
them (``tests/test_migrations.py`` checks that the migrated schema equals this metadata)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeEngine

from consumption_monitor.feeds.spec import (
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    ColumnSpec,
    RollupMeasure,
    StreamSpec,
    list_feeds,
    load_feed,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

BATCH_ID = 20  # hex characters of a batch id


def column_type(col: ColumnSpec) -> TypeEngine:
    if col.type == "decimal":
        return Numeric(DECIMAL_PRECISION, DECIMAL_SCALE, asdecimal=False)
    if col.type == "integer":
        return Integer()  # INTEGER_BITS
    if col.type == "boolean":
        return Boolean()
    if col.type == "date":
        return String(10)
    if col.identifier:  # byte order on PostgreSQL (ColumnSpec.identifier); SQLite has no "C"
        return String(col.max_length).with_variant(
            String(col.max_length, collation="C"), "postgresql"
        )
    return String(col.max_length)


def _feed_columns(stream: StreamSpec) -> list[Column]:
    return [
        Column(
            c.name,
            column_type(c),
            nullable=c.name not in stream.keys,
            comment=c.description or None,
        )
        for c in stream.columns
    ]


def stream_tables(stream: StreamSpec, period_field: str = "period") -> tuple[Table | None, Table]:
    """``stg_<table>``: every accepted batch; ``core_<table>``: the current version.

    Streams declared ``staging: false`` (transaction scale) have no staging table: their
    batches stay replayable from the raw archive, and the load writes core directly. The
    primary key is the stream's keys in their declared order (the period first, except
    where a leading identifier indexes better: trade-in); ``partitioned`` streams' core is
    partitioned by period on PostgreSQL (``warehouse/partitions.py``), one table on
    SQLite."""
    stg = None
    if stream.staging:
        stg = Table(
            f"stg_{stream.table}",
            metadata,
            Column("batch_id", String(BATCH_ID), nullable=False),
            *_feed_columns(stream),
            PrimaryKeyConstraint("batch_id", *stream.keys),
            comment=f"staging: typed rows of every accepted batch — {stream.description}",
        )
    core = Table(
        f"core_{stream.table}",
        metadata,
        *_feed_columns(stream),
        Column("batch_id", String(BATCH_ID), nullable=False),
        PrimaryKeyConstraint(*stream.keys),  # in the keys' declared order
        *(Index(None, *columns) for columns in stream.indexes),
        comment=f"core: current version per period — {stream.description}",
        **({"postgresql_partition_by": f"list ({period_field})"} if stream.partitioned else {}),
    )
    return stg, core


def _measure_type(measure: RollupMeasure, columns: dict[str, ColumnSpec]) -> TypeEngine:
    if measure.agg == "count":
        return Integer()
    col = columns[measure.column or ""]
    if measure.agg == "sum" and col.type == "decimal":
        return Numeric(24, 4, asdecimal=False)  # a month of a province's sums fits
    return column_type(col)


def rollup_table(stream: StreamSpec, period_field: str) -> Table | None:
    """``core_<rollup table>``: the stream's per-period pre-aggregate, if it declares one
    (no primary key: a grouping column may be null, as in the core table)."""
    spec = stream.rollup
    if spec is None:
        return None
    columns = {c.name: c for c in stream.columns}
    return Table(
        f"core_{spec.table}",
        metadata,
        *(
            Column(
                name,
                column_type(columns[name]),
                nullable=name != period_field,
                comment=columns[name].description or None,
            )
            for name in spec.by
        ),
        *(
            Column(
                m.name,
                _measure_type(m, columns),
                nullable=m.agg != "count",
                comment=m.description or None,
            )
            for m in spec.measures
        ),
        Index(None, *spec.by),
        comment=f"core: per-period rollup of core_{stream.table} — {spec.description}",
    )


raw_payload = Table(
    "raw_payload",
    metadata,
    Column("batch_id", String(BATCH_ID), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("page_no", Integer, primary_key=True),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("archive_path", Text, nullable=False, comment="relative to the archive root"),
    Column("sha256", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("url", Text, comment="without credentials"),
    Column("params", Text),
    Column("http_status", Integer),
    Column("received_at", DateTime(timezone=True)),
    Column(
        "received_sha256",
        String(64),
        comment="of the bytes received, when the archived page is pseudonymised",
    ),
    comment="raw: every archived page of every batch, with its checksum",
)

audit_load_batch = Table(
    "audit_load_batch",
    metadata,
    Column("batch_id", String(BATCH_ID), primary_key=True),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("revision", Integer, nullable=False, comment="1 for the first version of a period"),
    Column("content_sha256", String(64), nullable=False),
    Column("archive_dir", Text, nullable=False),
    Column(
        "status", String(16), nullable=False, comment="validated | rejected | loaded | superseded"
    ),
    Column("is_current", Boolean, nullable=False, server_default=text("false")),
    Column("verdict", String(16), comment="passed | warning | rejected"),
    Column("rows_received", Integer),
    Column("rows_loaded", Integer),
    Column("rows_quarantined", Integer),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("loaded_at", DateTime(timezone=True)),
    Column("superseded_at", DateTime(timezone=True)),
    Column("superseded_by", String(BATCH_ID)),
    Index("ix_audit_load_batch_feed_period", "feed", "period"),
    Index(
        "uq_audit_load_batch_current",
        "feed",
        "period",
        unique=True,
        sqlite_where=text("is_current"),
        postgresql_where=text("is_current"),
    ),
    comment="audit: one row per distinct batch (content) of a (feed, period)",
)

audit_load_run = Table(
    "audit_load_run",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("step", String(16), nullable=False, comment="extract | validate | load"),
    Column("batch_id", String(BATCH_ID)),
    Column("outcome", String(16), nullable=False),
    Column("message", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("dag_id", String(250)),
    Column("dag_run_id", String(250)),
    Column("task_id", String(250)),
    Column("try_number", Integer),
    Index("ix_audit_load_run_feed_period", "feed", "period"),
    comment="audit: every attempt of every step, including failures",
)

audit_validation_result = Table(
    "audit_validation_result",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("batch_id", String(BATCH_ID), nullable=False),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("stream", String(64), nullable=False),
    Column("suite", String(128), nullable=False),
    Column("expectation_index", Integer, nullable=False),
    Column("expectation_type", String(128), nullable=False),
    Column("column_name", String(255)),
    Column("severity", String(16), nullable=False),
    Column("description", Text),
    Column("success", Boolean, nullable=False),
    Column("element_count", Integer),
    Column("unexpected_count", Integer),
    Column("unexpected_percent", Float),
    Column("sample", Text, comment="JSON list of up to 10 unexpected values"),
    Column("kwargs", Text, comment="JSON expectation arguments"),
    Column("exception", Text),
    Column("validated_at", DateTime(timezone=True), nullable=False),
    Index("ix_audit_validation_result_batch", "batch_id"),
    Index("ix_audit_validation_result_feed_period", "feed", "period"),
    comment="audit: every expectation of every validation run",
)

audit_schema_views = Table(
    "audit_schema_views",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("sha256", String(64), nullable=False, comment="of the view's SQL file"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    comment="audit: the analyst views in place and the SQL they were built from",
)

audit_quarantine = Table(
    "audit_quarantine",
    metadata,
    Column("batch_id", String(BATCH_ID), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("row_number", Integer, primary_key=True, comment="0-based position in the batch"),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("failed_expectations", Text, nullable=False, comment="JSON list"),
    Column("raw_values", Text, nullable=False, comment="JSON object as received"),
    Column("entity_key", String(64), comment="who the row is about, e.g. the enterprise USCC"),
    Column("quarantined_at", DateTime(timezone=True), nullable=False),
    Index("ix_audit_quarantine_feed_period", "feed", "period"),
    Index("ix_audit_quarantine_feed_entity", "feed", "entity_key"),
    comment="audit: rows held back by critical row-level checks, with their raw values",
)

audit_alert = Table(
    "audit_alert",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("kind", String(16), nullable=False, comment="failure | warning | late | recovery"),
    Column("level", String(16), nullable=False, comment="critical | warning | info"),
    Column(
        "signature", String(64), nullable=False, comment="what failed: the dedup key's third part"
    ),
    Column("channel", String(32), nullable=False, comment="webhook:<format> | email | preview"),
    Column("status", String(16), nullable=False, comment="sent | failed"),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, comment="the message as rendered for the channel"),
    Column("batch_id", String(BATCH_ID)),
    Column("dag_id", String(250)),
    Column("dag_run_id", String(250)),
    Column("task_id", String(250)),
    Column("error", Text, comment="why sending failed (never a secret)"),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(32), comment="alert_id of the recovery message"),
    Index("ix_audit_alert_feed_period", "feed", "period"),
    Index("ix_audit_alert_dedup", "feed", "period", "signature", "channel"),
    comment="audit: every alert and recovery message sent (or attempted), per channel",
)

audit_review_item = Table(
    "audit_review_item",
    metadata,
    Column("item_id", String(32), primary_key=True),
    Column("feed", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("batch_id", String(BATCH_ID), nullable=False),
    Column("stream", String(64), nullable=False),
    Column("rule", String(255), nullable=False, comment="the check or rule that warned"),
    Column("severity", String(16), nullable=False),
    Column("entity_key", String(128), comment="who the warning is about (entity key)"),
    Column("entity_label", String(255), comment="the entity's name"),
    Column("message", Text, nullable=False, comment="the warning as operators read it"),
    Column("rows", Text, nullable=False, comment="JSON: batch rows with their keys"),
    Column("owner", String(64), nullable=False, comment="the responsible unit (measure catalog)"),
    Column("status", String(16), nullable=False, comment="open | explained | accepted | rejected"),
    Column("explanation", Text),
    Column("explained_by", String(64)),
    Column("explained_at", DateTime(timezone=True)),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_audit_review_item_feed_period", "feed", "period"),
    Index("ix_audit_review_item_batch", "batch_id"),
    comment="audit: verification (核实) of every warning: explanation and decision",
)

#: the states of a review item as operators read them (cm review, reports, status)
REVIEW_STATUS_LABELS = {
    "open": "待核实",
    "explained": "已说明",
    "accepted": "已确认",
    "rejected": "已驳回",
}

mart_indicator_snapshot = Table(
    "mart_indicator_snapshot",
    metadata,
    Column("snapshot_id", String(24), primary_key=True),
    Column("kpi_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("measure_no", Integer),
    Column("name", String(128), nullable=False),
    Column("unit", String(16)),
    Column("actual_month", Numeric(18, 4, asdecimal=False)),
    Column("actual_ytd", Numeric(18, 4, asdecimal=False)),
    Column("yoy_month_pct", Numeric(9, 2, asdecimal=False)),
    Column("yoy_ytd_pct", Numeric(9, 2, asdecimal=False)),
    Column("yoy_basis", String(16), comment="published | computed"),
    Column("target_value", Numeric(18, 4, asdecimal=False)),
    Column("target_comparator", String(2)),
    Column("expected_to_date", Numeric(18, 4, asdecimal=False)),
    Column("completion_ratio", Numeric(9, 4, asdecimal=False)),
    Column("status", String(16)),
    Column("source_batches", Text, nullable=False, comment="batch ids the values came from"),
    Column("validation_state", String(16), comment="worst verdict of the source batches"),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), comment="target | milestone | indicator (measure catalog)"),
    Column("data_period", String(7), comment="latest period of data the values cover"),
    Column("data_loaded_at", DateTime(timezone=True), comment="when its newest batch loaded"),
    Column("months_elapsed", Integer, comment="months of the year the data covers"),
    Column("prior_ytd", Numeric(18, 4, asdecimal=False), comment="same months a year earlier"),
    Column("milestone_status", String(16), comment="ledger status of a milestone task"),
    Column("status_date", String(10), comment="date of the milestone's latest progress"),
    Column(
        "previous_snapshot_id",
        String(24),
        comment="the snapshot of the same KPI and period this one replaced",
    ),
    Column(
        "comparable_ytd",
        Numeric(18, 4, asdecimal=False),
        comment="this year's value of the units present in both years (like-for-like YoY)",
    ),
    Column("pace", String(16), comment="pace kind: linear | seasonal | schedule | level | …"),
    Column("pace_basis", String(128), comment="what the expected-to-date value rests on"),
    Index("ix_mart_indicator_snapshot_kpi_period", "kpi_id", "period"),
    comment="mart: immutable indicator snapshots; a revision adds a row",
)

ref_workday_calendar = Table(
    "ref_workday_calendar",
    metadata,
    Column("day", String(10), primary_key=True, comment="ISO date"),
    Column("is_workday", Boolean, nullable=False),
    Column(
        "workday_seq",
        Integer,
        nullable=False,
        comment="working days from the first covered date up to this one, inclusive",
    ),
    Column(
        "day_type",
        String(16),
        nullable=False,
        comment="workday | weekend | holiday | adjusted_workday",
    ),
    Column("holiday_name", String(32), comment="the holiday, or the holiday a 调休 day serves"),
    Index("ix_ref_workday_calendar_workday_seq", "workday_seq"),
    comment="reference: PRC working-day calendar from reference/prc_holidays.yaml; "
    "the N-th working day after D has workday_seq = seq(D) + N",
)

audit_reference_data = Table(
    "audit_reference_data",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("sha256", String(64), nullable=False, comment="of the reference file loaded"),
    Column("rows", Integer, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    comment="audit: the reference tables in place and the file they were loaded from",
)

FEED_TABLES: dict[str, tuple[Table | None, Table]] = {}
ROLLUP_TABLES: dict[str, Table] = {}
for _feed in list_feeds():
    _spec = load_feed(_feed)
    for _stream in _spec.streams:
        FEED_TABLES[_stream.table] = stream_tables(_stream, _spec.period_field)
        _rollup = rollup_table(_stream, _spec.period_field)
        if _rollup is not None:
            ROLLUP_TABLES[_stream.table] = _rollup


def staging(stream: StreamSpec) -> Table:
    table = FEED_TABLES[stream.table][0]
    if table is None:
        raise KeyError(f"stream {stream.name} has no staging table (staging: false)")
    return table


def core(stream: StreamSpec) -> Table:
    return FEED_TABLES[stream.table][1]


def rollup(stream: StreamSpec) -> Table | None:
    """The stream's rollup table (None when it declares none)."""
    return ROLLUP_TABLES.get(stream.table)
