"""Reading any table shipyard accepts as a stream of Arrow record batches, without loading files whole."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from shipyard.errors import InvalidInputError

BATCH_ROWS = 65_536
DATA_KINDS = (
    "a pandas or polars DataFrame, a pyarrow Table, RecordBatch, RecordBatchReader or Dataset, "
    "a path to a Parquet/CSV file or folder, or an iterable of pyarrow RecordBatches"
)


def in_memory(data: object) -> bool:
    """True for a table already held in memory (a DataFrame, an Arrow Table or RecordBatch)."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return True
    return any(
        (module := sys.modules.get(name)) is not None and isinstance(data, module.DataFrame)
        for name in ("pandas", "polars")
    )


def iter_batches(
    data: object, columns: Sequence[str] | None = None
) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    """The schema of ``data`` and an iterator over its record batches, read lazily where it can be.

    The schema is ``None`` for an empty iterable of batches.

    Raises:
        InvalidInputError: ``data`` is not a kind of table this knows (see ``DATA_KINDS``).
    """
    if isinstance(data, str | os.PathLike):
        return _path_batches(Path(data), columns)
    table = _in_memory(data)
    if table is not None:
        if columns is not None:
            check_columns(table.schema, columns)
            table = table.select(list(columns))
        return table.schema, iter(table.to_batches(max_chunksize=BATCH_ROWS))
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, _project(iter(data), columns, data.schema)
    ds = sys.modules.get("pyarrow.dataset")
    if ds is not None and isinstance(data, ds.Dataset):
        if columns is not None:
            check_columns(data.schema, columns)
        return data.schema, iter(data.to_batches(columns=list(columns) if columns is not None else None))
    if isinstance(data, Iterable) and not isinstance(data, str | bytes | dict):
        return _iterable_batches(iter(data), columns)
    kind = f"{type(data).__module__}.{type(data).__qualname__}"
    raise InvalidInputError(f"cannot profile data of type {kind}; expected {DATA_KINDS}", field="data")


def check_columns(schema: pa.Schema, columns: Sequence[str]) -> None:
    missing = [c for c in columns if schema.get_field_index(c) < 0]
    if missing:
        raise InvalidInputError(
            f"column {missing[0]!r} is not in the data; its columns are: {', '.join(schema.names)}", field=missing[0]
        )


def _in_memory(data: object) -> pa.Table | None:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(f"cannot read the DataFrame as Arrow: {exc}", field="data") from exc
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(data, pl.DataFrame):
        return data.to_arrow()
    return None


def _path_batches(path: Path, columns: Sequence[str] | None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.dataset as ds

    if not path.exists():
        raise InvalidInputError(f"data path {str(path)!r} does not exist", field="data")
    fmt = "csv" if path.is_file() and path.suffix.lower() == ".csv" else "parquet"
    try:
        dataset = ds.dataset(str(path), format=fmt, partitioning="hive" if path.is_dir() else None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(f"cannot read {str(path)!r} as {fmt}: {exc}", field="data") from exc
    if columns is not None:
        check_columns(dataset.schema, columns)
    selected = list(columns) if columns is not None else None
    return dataset.schema, iter(dataset.to_batches(columns=selected, batch_size=BATCH_ROWS))


def _iterable_batches(
    items: Iterator[Any], columns: Sequence[str] | None
) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    first = next(items, None)
    if first is None:
        return None, iter(())
    if not isinstance(first, pa.RecordBatch):
        raise InvalidInputError(
            f"an iterable of data must yield pyarrow RecordBatches, got {type(first).__name__}", field="data"
        )

    def chained() -> Iterator[pa.RecordBatch]:
        yield first
        for item in items:
            if not isinstance(item, pa.RecordBatch):
                raise InvalidInputError(f"the data yielded a {type(item).__name__}, not a RecordBatch", field="data")
            yield item

    return first.schema, _project(chained(), columns, first.schema)


def _project(
    batches: Iterator[pa.RecordBatch], columns: Sequence[str] | None, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    if columns is None:
        return batches
    check_columns(schema, columns)
    return (b.select(list(columns)) for b in batches)
