"""The SQL backend: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from shipyard.store.sql._engine import Database
from shipyard.store.sql.auth import SqlAuthStore
from shipyard.store.sql.datasets import SqlDatasetStore
from shipyard.store.sql.features import SqlFeatureRegistry
from shipyard.store.sql.flows import SqlFlowRunStore
from shipyard.store.sql.gc import SqlGarbageCollector
from shipyard.store.sql.models import SqlModelStore
from shipyard.store.sql.runs import SqlRunStore

__all__ = [
    "Database",
    "SqlAuthStore",
    "SqlDatasetStore",
    "SqlFeatureRegistry",
    "SqlFlowRunStore",
    "SqlGarbageCollector",
    "SqlModelStore",
    "SqlRunStore",
    "open_sql_metadata",
]


def open_sql_metadata(
    uri: str,
) -> tuple[
    SqlRunStore,
    SqlDatasetStore,
    SqlModelStore,
    SqlGarbageCollector,
    Callable[[], None],
    SqlFlowRunStore,
    SqlFeatureRegistry,
    SqlAuthStore,
]:
    """The metadata stores over one shared engine, and the function that closes it (flows, features, auth last)."""
    db = Database(uri)
    return (
        SqlRunStore(db),
        SqlDatasetStore(db),
        SqlModelStore(db),
        SqlGarbageCollector(db),
        db.engine.dispose,
        SqlFlowRunStore(db),
        SqlFeatureRegistry(db),
        SqlAuthStore(db),
    )
