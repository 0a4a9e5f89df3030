"""The REST backend: the store Protocols served by a ``shipyard server`` (``SHIPYARD_STORE=http://...``).

One pooled ``httpx.Client`` per server URL and token, shared by the metadata stores and the
artifact store; the token (``settings.token``) goes as ``Authorization: Bearer``. Each store
call is one HTTP request, and errors come back as the same shipyard exception types.
"""

from __future__ import annotations

import threading
from typing import Any

from shipyard.store.rest._artifacts import RestArtifactStore
from shipyard.store.rest._client import RestClient, RestStore

__all__ = ["RestArtifactStore", "RestClient", "RestStore", "open_rest_artifacts", "open_rest_metadata"]

_clients: dict[tuple[str, str | None], RestClient] = {}
_lock = threading.Lock()


def _client(uri: str, token: str | None) -> RestClient:
    key = (uri.rstrip("/"), token)
    with _lock:
        client = _clients.get(key)
        if client is None or client.http.is_closed:
            client = _clients[key] = RestClient(uri, token=token)
        return client


def open_rest_metadata(uri: str, *, token: str | None = None) -> tuple[Any, ...]:
    """The metadata stores over ``uri``, in the order ``open_stores`` unpacks them (no auth store)."""
    client = _client(uri, token)
    groups = ("runs", "datasets", "models", "gc")
    runs, datasets, models, gc = (RestStore(client, g) for g in groups)
    return runs, datasets, models, gc, client.close, RestStore(client, "flows"), RestStore(client, "features")


def open_rest_artifacts(uri: str, *, endpoint_url: str | None = None, token: str | None = None) -> RestArtifactStore:
    """The artifact store of the server at ``uri`` (``endpoint_url`` is for S3 and ignored here)."""
    del endpoint_url
    return RestArtifactStore(uri, client=_client(uri, token))
