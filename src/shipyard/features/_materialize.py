"""Copying the latest value per entity from a view's source into the online store, in batches.

DuckDB reduces the source to one row per entity (latest event time, then latest created
time) inside the window, encodes each row's values as its JSON payload (vectorized, so no
Python loop per value) and streams the answer as Arrow record batches in key order; each
batch is written in one online-store transaction, so memory stays bounded by a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from shipyard.features._arrow import entity_keys
from shipyard.features._offline import arrow_reader, column_name, latest_rows_sql, micros, source_columns
from shipyard.features.models import FeatureView
from shipyard.features.online import OnlineRow, OnlineStore
from shipyard.features.sources import ident
from shipyard.store.entities import Materialization

if TYPE_CHECKING:
    import duckdb

BATCH_ROWS = 50_000
# DuckDB's own memory while materializing: beyond it, the per-entity aggregate spills to the
# temp folder. Without a limit DuckDB keeps buffers up to 80% of RAM, so its peak grows
# with the source's size even though one row per entity is all it needs.
MEMORY_LIMIT = "256MB"
Progress = Callable[[str, int, int], None]


def materialize_view(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    online: OnlineStore,
    *,
    start_us: int | None,
    end_us: int,
    progress: Progress | None = None,
) -> Materialization:
    """Write the view's latest values with event time in (start, end] to ``online``."""
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    try:
        return _materialize(con, view, online, start_us=start_us, end_us=end_us, progress=progress)
    finally:
        con.execute("RESET memory_limit")


def _materialize(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    online: OnlineStore,
    *,
    start_us: int | None,
    end_us: int,
    progress: Progress | None,
) -> Materialization:
    alias = f"__mat_{view.name}"
    types = source_columns(con, view, alias)
    # Filter before reducing to one row per entity, so a row after ``end`` never hides an earlier one.
    filtered = f"__win_{view.name}"
    ts = micros(view.timestamp_field, types[view.timestamp_field])
    window = f"{ts} <= {end_us}"
    if start_us is not None:
        window += f" AND {ts} > {start_us}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(filtered)} AS SELECT * FROM {ident(alias)} WHERE {window}")
    latest = latest_rows_sql(view, filtered, view.features, types)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __latest AS {latest}")
    total = con.execute("SELECT count(*), max(__ts) FROM __latest").fetchall()[0]
    rows, max_event = int(total[0]), total[1]
    done = 0
    if progress is not None:
        progress(view.name, done, rows)
    reader = arrow_reader(con, _payload_sql(view), BATCH_ROWS)
    for batch in reader:
        _write_batch(online, view, batch)
        done += batch.num_rows
        if progress is not None:
            progress(view.name, done, rows)
    con.execute("DROP TABLE __latest")
    start = 0.0 if start_us is None else start_us / 1e6
    return Materialization(
        view.name, start, end_us / 1e6, None if max_event is None else max_event / 1e6, rows, time.time()
    )


def _payload_sql(view: FeatureView) -> str:
    """The rows to write: join keys, event and created time, the values as one JSON object.

    The JSON is the one ``encode_rows`` writes for a push (timestamps as epoch µs; DuckDB
    prints doubles in their shortest exact form), so a read decodes both alike. Rows come in
    the order of their text keys: the online table's primary-key order, so SQLite appends.
    """
    dtypes = {f.name: f.dtype for f in view.schema}
    members = []
    for f in view.features:
        column = ident(column_name(view.name, f))
        members.append(f"{ident(f)} := {f'epoch_us({column})' if dtypes[f] == 'timestamp' else column}")
    keys = ", ".join(f"CAST({ident(k)} AS VARCHAR)" for k in view.join_keys)
    return (
        f"SELECT {', '.join(ident(k) for k in view.join_keys)}, __ts AS __e, coalesce(__created, 0) AS __c, "
        f"to_json(struct_pack({', '.join(members)})) AS __v FROM __latest ORDER BY {keys}"
    )


def _write_batch(online: OnlineStore, view: FeatureView, batch: pa.RecordBatch) -> None:
    keys = entity_keys(batch, view.join_keys)
    events = batch.column("__e").to_pylist()
    created = batch.column("__c").to_pylist()
    payloads = batch.column("__v").to_pylist()
    online.write(view.name, list(map(OnlineRow, keys, events, created, payloads)))
