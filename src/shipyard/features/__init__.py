"""The feature store: entities, feature views, point-in-time training frames, online serving.

Example:
    >>> from shipyard.features import Entity, FeatureView, Field, FileSource, FeatureStore
    >>> user = Entity("user", join_keys=["user_id"])
    >>> activity = FeatureView("activity", entities=[user], ttl="7d",
    ...                        source=FileSource("events.parquet", timestamp_field="ts"),
    ...                        schema=[Field("clicks_7d", "float")])
    >>> FeatureStore().apply([user, activity])  # doctest: +SKIP
"""

from shipyard.features._lookup import OnlineResponse
from shipyard.features.api import Change, FeatureStore
from shipyard.features.models import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    on_demand,
    parse_ttl,
)
from shipyard.features.online import OnlineStore, open_online_store
from shipyard.features.sources import DataFrameSource, DuckDBSource, FileSource, Source, SqlSource
from shipyard.features.stream import IngestStats, ingest_stream
from shipyard.store.entities import FeatureDefinition, Materialization

__all__ = [
    "Change",
    "DataFrameSource",
    "DuckDBSource",
    "Entity",
    "FeatureDefinition",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "IngestStats",
    "Materialization",
    "OnDemandFeatureView",
    "OnlineResponse",
    "OnlineStore",
    "Source",
    "SqlSource",
    "ingest_stream",
    "on_demand",
    "open_online_store",
    "parse_ttl",
]
