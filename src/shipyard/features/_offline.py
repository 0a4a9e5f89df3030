"""Point-in-time joins in DuckDB: one join per feature view, all in one query.

For each entity row and view: the source row with the same join keys and the latest event
time at or before the row's, and among rows sharing that event time the latest created one
(both orders packed into one key); a value older than the view's ttl is null. LEFT, so no
entity row is ever dropped, and the rows come back in the order they were given.

A view with a ttl and histories short enough for it is joined by hash inside the ttl
window (no sort of the source, about twice as fast as ASOF on the benchmark's data); any
other by ASOF JOIN, which sorts the source but never grows with the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from shipyard.errors import InvalidInputError
from shipyard.features.models import DTYPES, FeatureView
from shipyard.features.sources import ident, quote

if TYPE_CHECKING:
    import duckdb

ROW = "__shipyard_row"
_SLOT = 2**52  # room for created-time microseconds until the year 2112
BATCH_ROWS = 100_000
# The window join is chosen while its pairs (an upper bound) stay within this many times the
# rows of both sides; past that, ASOF's sort of the source costs less.
WINDOW_PAIRS = 4


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where naive timestamps mean UTC, spilling to the temp folder.

    Every query that needs an order says so (``ORDER BY``), so DuckDB need not keep the
    scan order, which costs memory on large sources.
    """
    import tempfile

    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    spill = Path(tempfile.gettempdir()) / "shipyard-duckdb"
    con.execute(f"SET temp_directory = {quote(str(spill))}")
    return con


def column_name(view: str, feature: str) -> str:
    """The internal, collision-free name of a view's feature column."""
    return f"{view}__{feature}"


def micros(column: str, sql_type: str) -> str:
    """SQL for a time column as epoch microseconds (naive times are UTC).

    Comparing integers: casting every row to TIMESTAMPTZ goes through the ICU calendar and
    costs more than the join itself.
    """
    if sql_type.startswith("TIMESTAMP"):
        return f"epoch_us({ident(column)})"
    if sql_type == "DATE":
        return f"epoch_us(CAST({ident(column)} AS TIMESTAMP))"
    return f"epoch_us(CAST({ident(column)} AS TIMESTAMPTZ))"  # text, possibly with an offset


def source_columns(con: duckdb.DuckDBPyConnection, view: FeatureView, alias: str) -> dict[str, str]:
    """Register the view's source as ``alias``, check it has every column the view names; their types."""
    view.source.register(con, alias)
    relation = con.sql(f"SELECT * FROM {ident(alias)}")
    columns = {name: str(t) for name, t in zip(relation.columns, relation.types, strict=True)}
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


def _typed_columns(view: FeatureView, features: Sequence[str], types: dict[str, str]) -> list[str]:
    dtypes = {f.name: f.dtype for f in view.schema}
    ts = micros(view.timestamp_field, types[view.timestamp_field])
    created_field = view.created_timestamp_field
    created = micros(created_field, types[created_field]) if created_field else "NULL::BIGINT"
    cols = [ident(k) for k in view.join_keys]
    cols += [f"{ts} AS __ts", f"{created} AS __created"]
    cols += [f"CAST({ident(f)} AS {DTYPES[dtypes[f]]}) AS {ident(column_name(view.name, f))}" for f in features]
    return cols


def latest_rows_sql(view: FeatureView, alias: str, features: Sequence[str], types: dict[str, str]) -> str:
    """The source's latest row per entity, typed: latest event time, then latest created time.

    ``__ts`` and ``__created`` are epoch microseconds. One ``arg_max`` per entity over the
    packed ``__ord`` key: a hash aggregate holds one row per entity, where ranking with a
    window would sort every source row.
    """
    keys = ", ".join(ident(k) for k in view.join_keys)
    columns = ", ".join(["__ts", "__created", *(ident(column_name(view.name, f)) for f in features)])
    return (
        f"SELECT {keys}, unnest(arg_max(struct_pack({columns}), __ord)) "
        f"FROM ({asof_rows_sql(view, alias, features, types)}) GROUP BY {keys}"
    )


def asof_rows_sql(view: FeatureView, alias: str, features: Sequence[str], types: dict[str, str]) -> str:
    """The source's rows, typed, with ``__ord``: the order ASOF picks in, ties broken by created time.

    ``__ord`` packs the event time and the created time into one HUGEINT (event µs · 2^52 +
    created µs + 1), so the ASOF join itself prefers the latest created row among rows of
    equal event time: ranking the ties with a window first costs twice the join. Without a
    created time there is nothing to break ties with, and ``__ord`` is the event time.
    """
    order = "__ts"
    if view.created_timestamp_field:
        order = f"__ts::HUGEINT * {_SLOT} + least(greatest(coalesce(__created + 1, 0), 0), {_SLOT - 1})"
    return (
        f"SELECT *, {order} AS __ord FROM (SELECT {', '.join(_typed_columns(view, features, types))} "
        f"FROM {ident(alias)} "
        f"WHERE {ident(view.timestamp_field)} IS NOT NULL)"
    )


def require_join_keys(view: FeatureView, entity: pa.Table, what: str) -> None:
    """Raise unless ``entity`` has every join key of ``view``."""
    missing = [k for k in view.join_keys if k not in entity.column_names]
    if missing:
        raise InvalidInputError(
            f"{what} has no join key {', '.join(map(repr, missing))} of feature view {view.name!r}; "
            f"its columns are: {', '.join(entity.column_names)}",
            field=what,
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
        require_join_keys(view, entity, "entity_df")
    # From numpy: building the row numbers from a Python range costs more than the join.
    rows = pa.array(np.arange(entity.num_rows, dtype=np.int64))
    con.register("__entity", entity.append_column(ROW, rows))
    ets = micros(timestamp_field, "DATE" if pa.types.is_date(ts_type) else "TIMESTAMP")
    eord = f"({ets})::HUGEINT * {_SLOT} + {_SLOT - 1}"
    ctes = [f"e AS (SELECT *, {ets} AS __ets, {eord} AS __eord FROM __entity)"]
    # Only the row number and features come back: the caller keeps the entity columns as given.
    selects = [f"e.{ROW}"]
    joins = []
    for i, (view, features) in enumerate(fetch):
        alias = f"__source_{i}"
        types = source_columns(con, view, alias)
        ctes.append(f"r{i} AS ({asof_rows_sql(view, alias, features, types)})")
        if view.max_age is not None and _window_join_fits(con, view, alias, entity.num_rows):
            cte, join, columns = _window_join(i, view, features)
            ctes.append(cte)
        else:
            join, columns = _asof_join(i, view, features)
        joins.append(join)
        selects += columns
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM e {' '.join(joins)} ORDER BY e.{ROW}"
    return arrow_reader(con, sql, BATCH_ROWS)


def _asof_join(i: int, view: FeatureView, features: Sequence[str]) -> tuple[str, list[str]]:
    """ASOF LEFT JOIN of source ``r{i}``: sorts the source; right whatever the data's shape."""
    r = f"r{i}"
    on = " AND ".join(f"e.{ident(k)} = {r}.{ident(k)}" for k in view.join_keys)
    entity_order = "e.__eord" if view.created_timestamp_field else "e.__ets"
    columns = []
    for f in features:
        col = ident(column_name(view.name, f))
        if view.max_age is None:
            columns.append(f"{r}.{col}")
        else:
            columns.append(f"CASE WHEN {r}.__ts >= e.__ets - {_age_us(view)} THEN {r}.{col} END AS {col}")
    return f"ASOF LEFT JOIN {r} ON {on} AND {entity_order} >= {r}.__ord", columns


def _window_join(i: int, view: FeatureView, features: Sequence[str]) -> tuple[str, str, list[str]]:
    """Hash join of each entity row with its source rows inside the ttl window, latest kept.

    No sort of the source: the entity rows are the hash table, the source streams past them,
    and one ``arg_max`` per entity row over the packed ``__ord`` picks the latest value
    (latest created among ties), which is the ASOF answer whenever it is within the ttl.
    """
    r, m = f"r{i}", f"m{i}"
    on = " AND ".join(f"e.{ident(k)} = {r}.{ident(k)}" for k in view.join_keys)
    names = [ident(column_name(view.name, f)) for f in features]
    packed = ", ".join(f"{n} := {r}.{n}" for n in names)
    cte = (
        f"{m} AS (SELECT e.{ROW} AS __row, arg_max(struct_pack({packed}), {r}.__ord) AS __v FROM e JOIN {r} "
        f"ON {on} AND {r}.__ts <= e.__ets AND {r}.__ts >= e.__ets - {_age_us(view)} GROUP BY e.{ROW})"
    )
    columns = [
        f"struct_extract({m}.__v, {quote(column_name(view.name, f))}) AS {n}"
        for f, n in zip(features, names, strict=True)
    ]
    return cte, f"LEFT JOIN {m} ON e.{ROW} = {m}.__row", columns


def _age_us(view: FeatureView) -> int:
    assert view.max_age is not None
    return int(view.max_age.total_seconds() * 1_000_000)


def _window_join_fits(con: duckdb.DuckDBPyConnection, view: FeatureView, alias: str, entity_rows: int) -> bool:
    """Whether the window join's pairs stay within ``WINDOW_PAIRS`` times the rows of both sides.

    The pairs are at most, per join key, its entity rows times its source rows: a few keys
    with long histories and many entity rows would make that quadratic, where ASOF is not.
    Counting costs one scan of the join-key column, a fraction of the join it spares.
    """
    keys = ", ".join(ident(k) for k in view.join_keys)
    pairs, source_rows = con.execute(
        f"WITH ek AS (SELECT {keys}, count(*) AS n FROM __entity GROUP BY ALL), "
        f"sk AS (SELECT {keys}, count(*) AS n FROM {ident(alias)} GROUP BY ALL) "
        f"SELECT coalesce(sum(ek.n * sk.n), 0), (SELECT coalesce(sum(n), 0) FROM sk) FROM ek JOIN sk USING ({keys})"
    ).fetchall()[0]
    return int(pairs) <= WINDOW_PAIRS * (int(source_rows) + entity_rows)


def arrow_reader(con: duckdb.DuckDBPyConnection, sql: str, rows: int) -> pa.RecordBatchReader:
    """The query's answer as a stream of Arrow record batches of ``rows`` rows.

    Through the relation API, which streams without copying; DuckDB 2 renamed the call.
    """
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    reader: pa.RecordBatchReader = fetch(rows)
    return reader
