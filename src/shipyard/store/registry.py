"""Backends chosen by URI scheme from a table of ``module:function`` strings, imported on first use."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.config import Settings
from shipyard.errors import ConfigError
from shipyard.store.protocols import (
    ArtifactStore,
    AuthStore,
    DatasetStore,
    FeatureRegistry,
    FlowRunStore,
    GarbageCollector,
    ModelStore,
    RunStore,
)

METADATA_BACKENDS = {
    "sqlite": "shipyard.store.sql:open_sql_metadata",
    "postgresql": "shipyard.store.sql:open_sql_metadata",
    "postgresql+psycopg": "shipyard.store.sql:open_sql_metadata",
    "http": "shipyard.store.rest:open_rest_metadata",
    "https": "shipyard.store.rest:open_rest_metadata",
}
ARTIFACT_BACKENDS = {
    "file": "shipyard.store.artifacts:FsspecArtifactStore",
    "s3": "shipyard.store.artifacts:FsspecArtifactStore",
    "memory": "shipyard.store.artifacts:FsspecArtifactStore",
    "http": "shipyard.store.rest:open_rest_artifacts",
    "https": "shipyard.store.rest:open_rest_artifacts",
}
REST_SCHEMES = ("http://", "https://")  # backends that send ``settings.token`` to a shipyard server


@dataclass(frozen=True, slots=True)
class Stores:
    """Every store one settings object resolves to."""

    settings: Settings
    runs: RunStore
    datasets: DatasetStore
    models: ModelStore
    gc: GarbageCollector
    artifacts: ArtifactStore
    close: Callable[[], None]
    flows: FlowRunStore
    features: FeatureRegistry
    auth: AuthStore | None = None  # tokens and the audit log; None where a backend keeps none


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by ``***``, safe to print."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc))


def _load(table: dict[str, str], uri: str, what: str) -> Callable[..., object]:
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    target = table.get(scheme)
    if target is None:
        known = ", ".join(sorted(table))
        raise ConfigError(f"{what} URI {redact_uri(uri)!r} has scheme {scheme!r}; known schemes: {known}")
    module_name, attr = target.split(":")
    factory: Callable[..., object] = getattr(importlib.import_module(module_name), attr)
    return factory


_cache: dict[tuple[str, str, str | None, str | None], Stores] = {}
_cache_lock = threading.Lock()


def _key(settings: Settings) -> tuple[str, str, str | None, str | None]:
    """What one set of stores is shared by: the URIs, and the token where a REST backend sends it."""
    rest = settings.store_uri.startswith(REST_SCHEMES) or settings.artifact_uri.startswith(REST_SCHEMES)
    return (settings.store_uri, settings.artifact_uri, settings.s3_endpoint_url, settings.token if rest else None)


def open_stores(settings: Settings) -> Stores:
    """Open (once per process and URI pair) the stores that ``settings`` point at.

    Engines and connection pools are expensive, so stores are shared per URI pair;
    they hold no per-run state. Settings that differ only in how the tracking threads
    behave (flush and heartbeat intervals) reuse the same engine rather than open a
    second one and leave the first undisposed.
    """
    key = _key(settings)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            if cached.settings != settings:
                cached = _cache[key] = replace(cached, settings=settings)
            return cached
        open_metadata = _load(METADATA_BACKENDS, settings.store_uri, "metadata store")
        artifact_class = _load(ARTIFACT_BACKENDS, settings.artifact_uri, "artifact store")
        token: dict[str, Any] = {"token": settings.token} if settings.store_uri.startswith(REST_SCHEMES) else {}
        metadata: Any = open_metadata(settings.store_uri, **token)
        runs, datasets, models, gc, close, flows, features, *more = metadata
        token = {"token": settings.token} if settings.artifact_uri.startswith(REST_SCHEMES) else {}
        artifacts = artifact_class(settings.artifact_uri, endpoint_url=settings.s3_endpoint_url, **token)
        auth = more[0] if more else None
        stores = Stores(settings, runs, datasets, models, gc, artifacts, close, flows, features, auth)  # type: ignore[arg-type]
        _cache[key] = stores
        return stores


def close_stores(settings: Settings) -> None:
    """Dispose of the connections held for ``settings`` (tests and short-lived tools call this)."""
    key = _key(settings)
    with _cache_lock:
        stores = _cache.pop(key, None)
    if stores is not None:
        stores.close()
