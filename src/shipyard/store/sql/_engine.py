"""One SQLAlchemy engine per metadata URI: SQLite in WAL mode or PostgreSQL through psycopg 3.

Writes go through :meth:`Database.write`, which on SQLite starts with ``BEGIN IMMEDIATE`` so
that concurrent writers queue on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from shipyard.errors import StoreUnavailableError
from shipyard.store.registry import redact_uri
from shipyard.store.sql._filter import sqlite_lower, sqlite_number

BUSY_TIMEOUT_S = 60
_WRITE = "shipyard_write"


def _normalize(uri: str) -> str:
    if uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    return uri


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
        # The filter language's number and case rules, so SQLite answers as PostgreSQL does.
        dbapi_connection.create_function("shipyard_number", 1, sqlite_number, deterministic=True)
        dbapi_connection.create_function("shipyard_lower", 1, sqlite_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _unavailable_errors(dbapi: Any, dialect: str) -> tuple[type[Exception], ...]:
    """The driver's errors that mean "the database cannot serve us now": locked, read-only, gone."""
    errors: tuple[type[Exception], ...] = (dbapi.OperationalError, dbapi.InterfaceError)
    if dialect == "postgresql":
        # A standby or a read-only session: the SQLite equivalent is an OperationalError already.
        errors += (dbapi.errors.ReadOnlySqlTransaction,)
    return errors


class Database:
    """An engine plus the two ways shipyard uses it: read transactions and write transactions."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        url = _normalize(uri)
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
            _configure_sqlite(self.engine)
        else:
            # NullPool after fork would be safer, but a pool is what makes run creation fast.
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)
        self._migrated = False
        self._migrate_lock = threading.Lock()
        dbapi: Any = self.engine.dialect.dbapi
        self.integrity_error: type[Exception] = dbapi.IntegrityError  # what a driver cursor raises
        self._unavailable = _unavailable_errors(dbapi, self.dialect)
        self._caught: tuple[type[Exception], ...] = (SQLAlchemyError, *self._unavailable)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Raise the database's "cannot serve us" errors as :class:`StoreUnavailableError`.

        One rule for both ways in: SQLAlchemy's wrappers (``exc.orig``) and the raw DBAPI errors
        that the driver cursor of the hot paths (:mod:`._driver`) raises.
        """
        try:
            yield
        except self._caught as exc:
            orig = getattr(exc, "orig", None) or exc
            if not isinstance(exc, OperationalError) and not isinstance(orig, self._unavailable):
                raise
            raise StoreUnavailableError(f"metadata store {redact_uri(self.uri)} failed: {orig}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction."""
        self.ensure_schema()
        with self._translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction: all of it commits or none of it does."""
        self.ensure_schema()
        with self._translated(), self.engine.connect() as raw:
            conn = raw.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def ensure_schema(self) -> None:
        """Apply pending migrations once per process; concurrent processes serialize on a lock."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            from shipyard.store.migrations import upgrade_to_head

            try:
                with self.engine.connect() as raw:
                    conn = raw.execution_options(**{_WRITE: True})
                    with conn.begin():
                        if self.dialect == "postgresql":
                            conn.execute(text("SELECT pg_advisory_xact_lock(7406251)"))
                        upgrade_to_head(conn)
            except SQLAlchemyError as exc:
                raise StoreUnavailableError(
                    f"cannot open metadata store {redact_uri(self.uri)}: {getattr(exc, 'orig', exc)}"
                ) from exc
            self._migrated = True

    def dispose(self) -> None:
        """Close pooled connections (call in a child after fork)."""
        self.engine.dispose(close=False)
