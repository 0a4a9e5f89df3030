"""In-memory tables to one canonical Arrow form, so the same data hashes and stores the same way.

pandas, polars and pyarrow disagree on string offsets (``string`` vs ``large_string``),
categoricals and list child names; none of that is the data. The canonical form decodes
dictionaries, widens variable-size types to their ``large_`` variant and names every list
child ``item``. Column order, names and every other type are kept.
"""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa

from shipyard.errors import InvalidInputError

SUPPORTED = "pandas.DataFrame, polars.DataFrame, pyarrow.Table, or a path to a Parquet/CSV file or folder"


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The canonical form of one Arrow type (see the module docstring)."""
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.large_binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.large_list(pa.field("item", canonical_type(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(pa.field("item", canonical_type(t.value_type)), t.list_size)
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, canonical_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(canonical_type(t.key_type), canonical_type(t.item_type))
    return t


def canonicalize(table: pa.Table) -> pa.Table:
    """Cast ``table`` to its canonical schema, keeping schema metadata (pandas' index layout)."""
    names = table.column_names
    if not names:
        raise InvalidInputError("data has no columns; a dataset needs at least one column", field="data")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(
            f"data has duplicate column names {duplicates}; rename them so each column is unique", field="data"
        )
    fields = [pa.field(f.name, canonical_type(f.type)) for f in table.schema]
    target = pa.schema(fields, metadata=table.schema.metadata)
    if target.equals(table.schema):
        return table
    try:
        return table.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(f"cannot bring the data's columns to a storable type: {exc}", field="data") from exc


def _module_of(data: object) -> str:
    return type(data).__module__.split(".", 1)[0]


def _is_pandas_frame(data: object) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def _is_polars_frame(data: object) -> bool:
    pl = sys.modules.get("polars")
    return pl is not None and isinstance(data, pl.DataFrame)


def _has_default_index(frame: Any) -> bool:
    import pandas as pd

    index = frame.index
    return (
        isinstance(index, pd.RangeIndex)
        and index.name is None
        and index.start == 0
        and index.step == 1
        and index.stop == len(frame)
    )


def from_pandas(frame: Any) -> pa.Table:
    """A pandas DataFrame as Arrow; an index other than the default ``RangeIndex`` becomes columns."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=not _has_default_index(frame))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(
            f"cannot convert the pandas DataFrame to Arrow: {exc}; give each column a single type", field="data"
        ) from exc


def to_arrow(data: object) -> tuple[pa.Table, str]:
    """An in-memory table as Arrow, with the name of the library it came from.

    Raises:
        InvalidInputError: ``data`` is not a table shipyard knows.
    """
    if isinstance(data, pa.Table):
        return data, "arrow"
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), "arrow"
    if _is_pandas_frame(data):
        return from_pandas(data), "pandas"
    if _is_polars_frame(data):
        return data.to_arrow(), "polars"  # type: ignore[attr-defined]
    kind = f"{_module_of(data)}.{type(data).__qualname__}" if _module_of(data) != "builtins" else type(data).__name__
    raise InvalidInputError(f"cannot log data of type {kind}; expected a {SUPPORTED}", field="data")
