"""Arrow helpers of the feature store: frames in, typed columns, online value encoding."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidInputError

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
KEY_SEPARATOR = "\x1f"


def to_arrow(frame: Any, *, what: str) -> pa.Table:
    """A pandas/polars DataFrame, Arrow table or mapping of columns as an Arrow table."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(frame, preserve_index=False)
    if module.startswith("polars"):
        table: pa.Table = frame.to_arrow()
        return table
    if isinstance(frame, Mapping):
        try:
            return pa.table({str(k): list(v) for k, v in frame.items()})
        except (pa.ArrowException, TypeError) as exc:
            raise InvalidInputError(f"{what} must map column names to equal-length lists: {exc}", field=what) from exc
    if isinstance(frame, Sequence) and frame and all(isinstance(row, Mapping) for row in frame):
        return pa.Table.from_pylist(list(frame))
    raise InvalidInputError(
        f"{what} must be a pandas or polars DataFrame, an Arrow table or a mapping of columns, "
        f"got {type(frame).__name__}",
        field=what,
    )


def table_digest(table: pa.Table) -> str:
    """The sha256 of a table's Arrow IPC bytes (its schema and content)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def entity_keys(table: pa.Table | pa.RecordBatch, join_keys: Sequence[str]) -> list[str]:
    """One string per row naming its entity: the join key values as text, joined.

    Text, so that ``42`` and ``"42"`` name the same user online whatever the source's type.
    """
    columns = [pc.cast(table.column(k), pa.string()).to_pylist() for k in join_keys]
    if len(columns) == 1:
        return ["" if v is None else v for v in columns[0]]
    return [KEY_SEPARATOR.join("" if v is None else v for v in parts) for parts in zip(*columns, strict=True)]


def encode_rows(batch: pa.RecordBatch | pa.Table, features: Sequence[str], dtypes: Sequence[str]) -> list[str]:
    """Each row's feature values as one JSON object; timestamps as epoch microseconds."""
    columns: list[list[Any]] = []
    for name, dtype in zip(features, dtypes, strict=True):
        column = batch.column(name)
        if dtype == "timestamp":
            column = pc.cast(pc.cast(column, ARROW_TYPES["timestamp"]), pa.int64())
        columns.append(column.to_pylist())
    names = list(features)
    return [json.dumps(dict(zip(names, values, strict=True))) for values in zip(*columns, strict=True)]


def decode_column(values: Sequence[Any], dtype: str) -> pa.Array:
    """Decoded online values (``None`` where absent) as an Arrow array of the declared type."""
    return pa.array(values, type=ARROW_TYPES[dtype])


def epoch_us(column: pa.Array | pa.ChunkedArray) -> list[int | None]:
    """A timestamp column (naive means UTC) as epoch microseconds."""
    if pa.types.is_timestamp(column.type) and column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    return list(pc.cast(pc.cast(column, ARROW_TYPES["timestamp"]), pa.int64()).to_pylist())
