"""The metadata schema, as SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Alembic migrations in ``store/migrations`` are generated from this file; change both
together (``alembic revision --autogenerate``) and never edit an applied migration.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

KEY = String(250)
NAME = String(250)
ID = String(32)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Column("heartbeat_at", Float),
    Column("parent_run_id", ID),
    Column("user_name", NAME, nullable=False),
    Column("lineage", Text, nullable=False),
    Column("deleted_at", Float),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_start", "start_time", "id"),  # the newest-first runs table, read backwards
    Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_value", "key", "run_id"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

# Every logged point. NaN is kept through ``is_nan`` because SQLite stores NaN as NULL.
metrics = Table(
    "metrics",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step", "timestamp"),
)

# The last point of each metric (highest step, then timestamp): what search and order_by read.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("name", NAME, ForeignKey("datasets.name", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("schema", Text, nullable=False),
    Column("stats", Text, nullable=False),
    Column("num_rows", BigInteger),
    Column("artifact_digest", String(64), nullable=False),
    Column("source", Text),
    Column("created_at", Float, nullable=False),
    Column("created_by_run", ID),
    UniqueConstraint("name", "digest"),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("role", String(16), primary_key=True),
    Index("ix_run_datasets_dataset", "name", "version"),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("description", Text, nullable=False),
    Column("owner", NAME),
    Column("team", NAME),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deleted_at", Float),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("run_id", ID),
    Column("flavor", String(32), nullable=False),
    Column("artifact_path", String(1000), nullable=False),
    Column("manifest_digest", String(64), nullable=False),
    Column("signature", Text),
    Column("metrics", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("intended_use", Text, nullable=False),
    Column("limitations", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float),
    Index("ix_model_versions_run", "run_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True),
    Column("alias", KEY, primary_key=True),
    Column("version", Integer, nullable=False),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),  # 0 = tags of the registered model itself
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

# flows ---------------------------------------------------------------------------

flows = Table(
    "flows",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("description", Text, nullable=False),
    Column("entrypoint", Text),
    Column("schedule", String(120)),
    Column("timezone", String(64), nullable=False),
    Column("triggers", Text, nullable=False),
    Column("owners", Text, nullable=False),
    Column("max_active_runs", Integer),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# ``pending`` rows are the run queue: claimed by priority, then scheduled time.
flow_runs = Table(
    "flow_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("flow_name", NAME, nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("params_ref", Text),
    Column("created_at", Float, nullable=False),
    Column("start_time", Float),
    Column("end_time", Float),
    Column("heartbeat_at", Float),
    Column("tracking_run_id", ID),
    Column("executor", String(32), nullable=False),
    Column("trigger", Text, nullable=False),
    Column("scheduled_time", Float),
    Column("priority", Integer, nullable=False),
    Column("run_count", Integer, nullable=False),
    Column("error", Text),
    Column("result_ref", Text),
    Column("entrypoint", Text),
    Column("cancel_requested", Boolean, nullable=False),
    Index("ix_flow_runs_flow_created", "flow_name", "created_at"),
    Index("ix_flow_runs_state_heartbeat", "state", "heartbeat_at"),
    Index("ix_flow_runs_state_priority", "state", "priority", "scheduled_time"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("flow_run_id", ID, ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False),
    Column("task_key", KEY, nullable=False),
    Column("name", NAME, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("start_time", Float),
    Column("end_time", Float),
    Column("resources", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("upstream", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("cache_key", String(64)),
    Column("output", Text),
    Column("error", Text),
    Column("kind", String(16), nullable=False),
    Column("reused_from", ID),
    Column("tracking_run_id", ID),
    Column("options", Text, nullable=False),
    UniqueConstraint("flow_run_id", "task_key"),
    Index("ix_task_runs_cache_key", "cache_key", "end_time"),
)

task_logs = Table(
    "task_logs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("flow_run_id", ID, ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False),
    Column("task_run_id", ID, nullable=False),
    Column("task_key", KEY, nullable=False),
    Column("stream", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_task_logs_flow_run", "flow_run_id", "id"),
)

# Serialized task inputs and outputs by sha256: small ones inline (``data``), large ones in
# the artifact store (``data`` is NULL; the garbage collector keeps those blobs alive).
flow_values = Table(
    "flow_values",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary),
    Column("created_at", Float, nullable=False),
)

# A schedule slot or trigger event a flow was run for: the primary key makes a claim unique,
# so two schedulers never both enqueue it.
flow_claims = Table(
    "flow_claims",
    metadata,
    Column("flow_name", NAME, primary_key=True),
    Column("claim_key", KEY, primary_key=True),
    Column("slot_time", Float),
    Column("flow_run_id", ID),
    Column("claimed_at", Float, nullable=False),
    Index("ix_flow_claims_slot", "flow_name", "slot_time"),
)

# Where each trigger of a flow has read up to (a dataset version, an alias's version, an event id).
flow_trigger_cursors = Table(
    "flow_trigger_cursors",
    metadata,
    Column("flow_name", NAME, primary_key=True),
    Column("trigger_key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Events other capabilities emit (monitoring alerts, ...) that flows can be triggered by.
flow_events = Table(
    "flow_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", NAME, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_flow_events_kind_name", "kind", "name", "id"),
)

# Feature-store definitions, versioned: a changed spec (JSON) is the next version of its name.
feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# How far each feature view has been materialized into the online store (event time).
feature_materializations = Table(
    "feature_materializations",
    metadata,
    Column("view", NAME, primary_key=True),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float, nullable=False),
    Column("max_event_time", Float),
    Column("rows", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# API tokens for the team server: only the sha256 of the secret is kept (the secret is shown once).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used", Float),
    Column("revoked_at", Float),
)

# Who wrote what, when, and how it ended: every write through the server, token changes, logins.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("principal", NAME, nullable=False),
    Column("action", String(1000), nullable=False),
    Column("status", Integer, nullable=False),
    Column("client", String(64)),
    Index("ix_audit_log_at", "at"),
)
