"""Point-in-time joins in DuckDB: one ASOF LEFT JOIN per feature view, in one query.

For each entity row and view, ASOF picks the source row with the same join keys and the
latest event time at or before the row's; rows sharing an event time are first reduced to
the latest created one; a value older than the view's ttl is nulled. LEFT, so no entity
row is ever dropped, and the rows come back in the order they were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from shipyard.errors import InvalidInputError
from shipyard.features.models import DTYPES, FeatureView
from shipyard.features.sources import ident

if TYPE_CHECKING:
    import duckdb

ROW = "__shipyard_row"
BATCH_ROWS = 100_000


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where naive timestamps mean UTC."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def column_name(view: str, feature: str) -> str:
    """The internal, collision-free name of a view's feature column."""
    return f"{view}__{feature}"


def source_columns(con: duckdb.DuckDBPyConnection, view: FeatureView, alias: str) -> list[str]:
    """Register the view's source as ``alias`` and check it has every column the view names."""
    view.source.register(con, alias)
    columns: list[str] = list(con.sql(f"SELECT * FROM {ident(alias)}").columns)
    wanted = [*view.join_keys, view.timestamp_field, *view.features]
    if view.created_timestamp_field:
        wanted.append(view.created_timestamp_field)
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidInputError(
            f"feature view {view.name!r}: its source has no column {', '.join(map(repr, missing))}; "
            f"its columns are: {', '.join(columns)}",
            field="source",
        )
    return columns


def latest_rows_sql(view: FeatureView, alias: str, features: Sequence[str], *, per: Sequence[str]) -> str:
    """The source's rows, typed, keeping one row per ``per`` columns: the latest created one.

    ``per`` is the join keys plus the event time for the point-in-time join (a tie on event
    time goes to the latest created row), and the join keys alone for materialization.
    """
    dtypes = {f.name: f.dtype for f in view.schema}
    ts = f"CAST({ident(view.timestamp_field)} AS TIMESTAMPTZ)"
    created = f"CAST({ident(view.created_timestamp_field)} AS TIMESTAMPTZ)" if view.created_timestamp_field else "NULL"
    cols = [ident(k) for k in view.join_keys]
    cols += [f"{ts} AS __ts", f"{created} AS __created"]
    cols += [f"CAST({ident(f)} AS {DTYPES[dtypes[f]]}) AS {ident(column_name(view.name, f))}" for f in features]
    order = ["__ts DESC"] if "__ts" not in per else []
    order.append("__created DESC NULLS LAST")
    partition = ", ".join(ident(k) if k != "__ts" else "__ts" for k in per)
    return (
        f"SELECT {', '.join(cols)} FROM {ident(alias)} WHERE {ident(view.timestamp_field)} IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {', '.join(order)}) = 1"
    )


def historical_reader(
    con: duckdb.DuckDBPyConnection,
    entity: pa.Table,
    timestamp_field: str,
    fetch: Sequence[tuple[FeatureView, Sequence[str]]],
) -> pa.RecordBatchReader:
    """The entity rows with each view's features as of their timestamps, streamed in batches."""
    if timestamp_field not in entity.column_names:
        raise InvalidInputError(
            f"entity frame has no timestamp column {timestamp_field!r}; its columns are: "
            f"{', '.join(entity.column_names)} (pass timestamp_field= to name another one)",
            field="entity_df",
        )
    ts_type = entity.schema.field(timestamp_field).type
    if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type)):
        raise InvalidInputError(
            f"entity frame column {timestamp_field!r} must hold timestamps, got {ts_type}", field="entity_df"
        )
    for view, _ in fetch:
        missing = [k for k in view.join_keys if k not in entity.column_names]
        if missing:
            raise InvalidInputError(
                f"entity frame has no join key {', '.join(map(repr, missing))} of feature view {view.name!r}; "
                f"its columns are: {', '.join(entity.column_names)}",
                field="entity_df",
            )
    originals = entity.column_names
    con.register("__entity", entity.append_column(ROW, pa.array(range(entity.num_rows), pa.int64())))
    ctes = [f"e AS (SELECT *, CAST({ident(timestamp_field)} AS TIMESTAMPTZ) AS __ets FROM __entity)"]
    selects = [f"e.{ident(c)}" for c in originals]
    joins = []
    for i, (view, features) in enumerate(fetch):
        alias, r = f"__source_{i}", f"r{i}"
        source_columns(con, view, alias)
        ctes.append(f"{r} AS ({latest_rows_sql(view, alias, features, per=[*view.join_keys, '__ts'])})")
        on = " AND ".join(f"e.{ident(k)} = {r}.{ident(k)}" for k in view.join_keys)
        joins.append(f"ASOF LEFT JOIN {r} ON {on} AND e.__ets >= {r}.__ts")
        for f in features:
            col = ident(column_name(view.name, f))
            if view.max_age is None:
                selects.append(f"{r}.{col}")
            else:
                micros = int(view.max_age.total_seconds() * 1_000_000)
                selects.append(f"CASE WHEN {r}.__ts >= e.__ets - to_microseconds({micros}) THEN {r}.{col} END AS {col}")
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM e {' '.join(joins)} ORDER BY e.{ROW}"
    return arrow_reader(con, sql, BATCH_ROWS)


def arrow_reader(con: duckdb.DuckDBPyConnection, sql: str, rows: int) -> pa.RecordBatchReader:
    """The query's answer as a stream of Arrow record batches of ``rows`` rows.

    Through the relation API, which streams without copying; DuckDB 2 renamed the call.
    """
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    reader: pa.RecordBatchReader = fetch(rows)
    return reader
