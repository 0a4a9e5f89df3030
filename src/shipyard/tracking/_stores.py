"""Which stores the module-level API writes to: the client's, or those the settings in force name."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Protocol

from shipyard.config import Settings, resolve_settings
from shipyard.store import Stores, open_stores


class HasStores(Protocol):
    """Anything that carries resolved stores: a ``Client``."""

    @property
    def stores(self) -> Stores: ...


# Keyed by working directory and SHIPYARD_* variables, which may change per run (a flow
# sets SHIPYARD_PARENT_RUN_ID per task): least recently used entries go past this many.
_SETTINGS_CACHE_SIZE = 32
_settings_cache: OrderedDict[tuple[str, tuple[str, ...]], Settings] = OrderedDict()
_settings_lock = threading.Lock()


def resolve_stores(client: HasStores | None = None) -> Stores:
    """The stores of ``client``, or of the settings in force (env, ``shipyard.toml``, defaults).

    Settings are resolved once per working directory and set of ``SHIPYARD_*`` variables:
    resolving walks the folders upward, which would cost more than creating a run.
    """
    if client is not None:
        return client.stores
    key = (
        os.getcwd(),
        tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("SHIPYARD_", "AWS_ENDPOINT_URL")))),
    )
    with _settings_lock:
        settings = _settings_cache.get(key)
        if settings is not None:
            _settings_cache.move_to_end(key)
    if settings is None:
        settings = resolve_settings()
        with _settings_lock:
            _settings_cache[key] = settings
            while len(_settings_cache) > _SETTINGS_CACHE_SIZE:
                _settings_cache.popitem(last=False)
    return open_stores(settings)
