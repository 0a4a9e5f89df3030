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
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
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
