"""A database that cannot serve shipyard raises StoreUnavailableError, on the hot paths too.

The hot paths (metric batches, history reads, run creation) talk to the DBAPI cursor
directly; their driver errors must reach users as the same shipyard error the SQLAlchemy
paths raise, with the driver's error kept as ``__cause__``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Connection, event

from shipyard.errors import StoreUnavailableError
from shipyard.store import Stores
from shipyard.store.entities import MetricPoint


def _run(stores: Stores) -> str:
    exp = stores.runs.create_experiment("errors")
    run = stores.runs.create_run(
        exp.id, name="r", user="u", parent_run_id=None, lineage={}, tags={}, start_time=time.time()
    )
    return run.id


@contextmanager
def _read_only(stores: Stores) -> Iterator[None]:
    """Each transaction refuses writes once begun, as a disk remounted read-only or a standby does."""
    engine = stores.runs.db.engine
    sql = "PRAGMA query_only = ON" if engine.dialect.name == "sqlite" else "SET TRANSACTION READ ONLY"

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(sql)

    def on_rollback(conn: Connection) -> None:
        if engine.dialect.name == "sqlite":  # query_only outlives the transaction: end it with it
            conn.exec_driver_sql("PRAGMA query_only = OFF")

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "rollback", on_rollback)
    try:
        yield
    finally:
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "rollback", on_rollback)


def test_read_only_database_on_hot_paths_is_store_unavailable(stores: Stores) -> None:
    run_id = _run(stores)
    experiment_id = stores.runs.get_experiment("errors").id
    with _read_only(stores):
        with pytest.raises(StoreUnavailableError, match=r"metadata store .* failed: .*read.?only") as info:
            stores.runs.log_metrics(run_id, [MetricPoint("loss", 0.5, 0, time.time())])
        # The driver's own error, not SQLAlchemy's wrapper: this went through the cursor hot path.
        assert isinstance(info.value.__cause__, sqlite3.OperationalError | psycopg.errors.ReadOnlySqlTransaction)
        with pytest.raises(StoreUnavailableError) as info:
            stores.runs.create_run(
                experiment_id, name="r2", user="u", parent_run_id=None, lineage={}, tags={}, start_time=time.time()
            )
        assert isinstance(info.value.__cause__, sqlite3.OperationalError | psycopg.errors.ReadOnlySqlTransaction)
    assert stores.runs.get_run(run_id).metrics == {}  # nothing was half-written
    assert len(stores.runs.search_runs([], filter=None, order_by=[], max_results=10, page_token=None)) == 1


@pytest.mark.postgres
def test_connection_lost_mid_transaction_is_store_unavailable(stores: Stores) -> None:
    if stores.runs.db.dialect != "postgresql":
        pytest.skip("a server connection to lose: PostgreSQL only")
    run_id = _run(stores)
    stores.runs.log_metrics(run_id, [MetricPoint("loss", 0.5, 0, time.time())])
    engine = stores.runs.db.engine
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False).split("?")[0]

    def kill_backend(conn: Connection) -> None:
        pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    event.listen(engine, "begin", kill_backend)
    try:
        with pytest.raises(StoreUnavailableError, match="failed") as info:
            stores.runs.get_metric_history(run_id, "loss")
        # The cursor's error, or SQLAlchemy's on the rollback that follows it on a dead connection.
        chain = [info.value.__cause__, getattr(info.value.__cause__, "__context__", None)]
        assert any(isinstance(getattr(e, "orig", e), psycopg.OperationalError) for e in chain)
    finally:
        event.remove(engine, "begin", kill_backend)
    assert len(stores.runs.get_metric_history(run_id, "loss")) == 1  # the pool recovers
