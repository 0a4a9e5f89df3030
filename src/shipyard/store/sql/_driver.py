"""Driver-level statements for the hot paths: metric batches, history reads, run creation.

SQLAlchemy Core builds and processes parameters per row; on a 10,000-point batch that cost
3x the database's own work (measured in ``benchmarks/tracking.py``). These statements go
straight to the DBAPI cursor of the connection SQLAlchemy already holds, inside the same
transaction. The SQL is plain and identical on SQLite and PostgreSQL except for the
placeholder, which :func:`cursor` rewrites.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

INSERT_METRICS = "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?, ?, ?, ?, ?, ?)"
UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, "
    "step = excluded.step, timestamp = excluded.timestamp "
    "WHERE excluded.step > latest_metrics.step "
    "OR (excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
)
SELECT_HISTORY = (
    "SELECT value, is_nan, step, timestamp FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, timestamp, id"
)
INSERT_RUN = (
    "INSERT INTO runs (id, experiment_id, name, status, start_time, heartbeat_at, parent_run_id, user_name, lineage) "
    "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)"
)
INSERT_TAG = "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)"
INSERT_PARAM = "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)"
UPSERT_ARTIFACT = (
    "INSERT INTO artifacts (run_id, path, digest, size, created_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, path) DO UPDATE SET digest = excluded.digest, size = excluded.size, "
    "created_at = excluded.created_at"
)
END_RUN = "UPDATE runs SET status = ?, end_time = ?, heartbeat_at = ? WHERE id = ?"


class Cursor:
    """A DBAPI cursor on the connection's current transaction, with ``?`` placeholders everywhere."""

    def __init__(self, conn: Connection) -> None:
        self._postgres = conn.dialect.name == "postgresql"
        self._cursor: Any = conn.connection.cursor()  # sqlite3 or psycopg: driver-specific options
        self.errors: Any = conn.dialect.dbapi  # the driver module: .IntegrityError and friends

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; returns its rows (empty for writes)."""
        rows = self.iterate(sql, params)
        return [] if self._cursor.description is None else list(rows)

    def iterate(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Run one query; yields its rows one at a time, so a caller can convert without a second list."""
        if self._postgres:
            # Binary results: parsing a million floats from text took half of a history read.
            self._cursor.execute(self._sql(sql), params, binary=True)
        else:
            self._cursor.execute(sql, params)
        return iter(self._cursor) if self._cursor.description is not None else iter(())

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        self._cursor.executemany(self._sql(sql), list(rows))

    def rowcount(self) -> int:
        """Rows touched by the last write."""
        return int(self._cursor.rowcount)

    def select_in(self, sql: str, column: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run ``sql`` with ``{in}`` replaced by ``column IN (?, ?, ...)`` for ``values``."""
        marks = ", ".join("?" for _ in values)
        return self.execute(sql.replace("{in}", f"{column} IN ({marks})"), list(values))


def cursor(conn: Connection) -> Cursor:
    """A driver cursor inside ``conn``'s transaction."""
    return Cursor(conn)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a large result becomes Python objects.

    Reading a million-point history allocates two million tuples, none of them in a cycle;
    the collector would walk them again and again as they survive (40% of the read time,
    measured in ``benchmarks/tracking.py --scale``). Reference counting still frees memory;
    the collector resumes afterwards, unless someone else had turned it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
