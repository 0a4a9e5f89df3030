"""The spine: metadata and artifact stores, picked by URI scheme."""

from shipyard.store.protocols import ArtifactStore, DatasetStore, GarbageCollector, ModelStore, RunStore
from shipyard.store.registry import Stores, close_stores, open_stores, redact_uri

__all__ = [
    "ArtifactStore",
    "DatasetStore",
    "GarbageCollector",
    "ModelStore",
    "RunStore",
    "Stores",
    "close_stores",
    "open_stores",
    "redact_uri",
]
