"""Copying the latest value per entity from a view's source into the online store, in batches.

DuckDB reduces the source to one row per entity (latest event time, then latest created
time) inside the window and streams the answer as Arrow record batches; each batch is
encoded and written in one online-store transaction, so memory stays bounded by a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from shipyard.features._arrow import encode_rows, entity_keys
from shipyard.features._offline import arrow_reader, column_name, latest_rows_sql, micros, source_columns
from shipyard.features.models import FeatureView
from shipyard.features.online import OnlineRow, OnlineStore
from shipyard.features.sources import ident
from shipyard.store.entities import Materialization

if TYPE_CHECKING:
    import duckdb

BATCH_ROWS = 10_000
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
    reader = arrow_reader(con, "SELECT *, __ts AS __e, __created AS __c FROM __latest", BATCH_ROWS)
    dtypes = [f.dtype for f in view.schema]
    columns = [column_name(view.name, f) for f in view.features]
    for batch in reader:
        _write_batch(online, view, batch, columns, dtypes)
        done += batch.num_rows
        if progress is not None:
            progress(view.name, done, rows)
    con.execute("DROP TABLE __latest")
    start = 0.0 if start_us is None else start_us / 1e6
    return Materialization(
        view.name, start, end_us / 1e6, None if max_event is None else max_event / 1e6, rows, time.time()
    )


def _write_batch(
    online: OnlineStore, view: FeatureView, batch: pa.RecordBatch, columns: list[str], dtypes: list[str]
) -> None:
    keys = entity_keys(batch, view.join_keys)
    renamed = pa.RecordBatch.from_arrays([batch.column(c) for c in columns], names=list(view.features))
    payloads = encode_rows(renamed, view.features, dtypes)
    events = batch.column("__e").to_pylist()
    created = [c or 0 for c in batch.column("__c").to_pylist()]
    online.write(view.name, [OnlineRow(*row) for row in zip(keys, events, created, payloads, strict=True)])
