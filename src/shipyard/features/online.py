"""Online stores: the latest feature values per entity, for millisecond lookups.

One interface, chosen by URI scheme like the metadata store: ``sqlite:///path`` (the
default, a file beside the metadata) and ``redis://host:port/db`` (the ``redis`` extra).
Each value carries its event and created time: a write only replaces an older value, so
re-running a materialization, or materializing after a fresher ``push``, never goes back.
"""

from __future__ import annotations

import importlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from shipyard.errors import ConfigError

ONLINE_BACKENDS = {
    "sqlite": "shipyard.features.online:SqliteOnlineStore",
    "redis": "shipyard.features._redis:RedisOnlineStore",
    "rediss": "shipyard.features._redis:RedisOnlineStore",
}
_READ_CHUNK = 500


class OnlineRow(NamedTuple):
    """One entity's values of one view: its key, event and created time (epoch µs), JSON payload."""

    key: str
    event_us: int
    created_us: int
    payload: str


class OnlineStore(Protocol):
    """Batch writes and batch reads of the latest values per (view, entity key)."""

    uri: str

    def write(self, view: str, rows: Sequence[OnlineRow]) -> None: ...
    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]: ...
    def delete_view(self, view: str) -> None: ...
    def close(self) -> None: ...


def open_online_store(uri: str) -> OnlineStore:
    """The online store ``uri`` names; an unknown scheme says which ones exist."""
    from shipyard.store import redact_uri

    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    target = ONLINE_BACKENDS.get(scheme)
    if target is None:
        known = ", ".join(sorted(ONLINE_BACKENDS))
        raise ConfigError(f"online store URI {redact_uri(uri)!r} has scheme {scheme!r}; known schemes: {known}")
    module, attr = target.split(":")
    store: OnlineStore = getattr(importlib.import_module(module), attr)(uri)
    return store


_UPSERT = """
INSERT INTO online_features (view, key, event_us, created_us, payload) VALUES ({view}, ?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE SET
    event_us = excluded.event_us, created_us = excluded.created_us, payload = excluded.payload
WHERE excluded.event_us > online_features.event_us
   OR (excluded.event_us = online_features.event_us AND excluded.created_us >= online_features.created_us)
"""


class SqliteOnlineStore:
    """A SQLite file in WAL mode; one connection per thread."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.path = uri.removeprefix("sqlite:///") or ":memory:"
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS online_features (view TEXT NOT NULL, key TEXT NOT NULL, "
                "event_us INTEGER NOT NULL, created_us INTEGER NOT NULL, payload TEXT NOT NULL, "
                "PRIMARY KEY (view, key)) WITHOUT ROWID"
            )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    def write(self, view: str, rows: Sequence[OnlineRow]) -> None:
        # The view as a literal, so each row binds as it is (a tuple): no copy of every row.
        literal = "'" + view.replace("'", "''") + "'"
        with self._conn() as conn:  # one transaction per batch
            conn.executemany(_UPSERT.format(view=literal), rows)

    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        found: dict[str, OnlineRow] = {}
        conn = self._conn()
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _READ_CHUNK):
            chunk = unique[i : i + _READ_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT key, event_us, created_us, payload FROM online_features WHERE view = ? AND key IN ({marks})"
            )
            for row in conn.execute(query, (view, *chunk)):
                found[row[0]] = OnlineRow(*row)
        return [found.get(key) for key in keys]

    def delete_view(self, view: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM online_features WHERE view = ?", (view,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
