"""A table's schema and summary statistics, computed with Arrow kernels (no loops over rows).

Every column gets ``count`` (non-null values) and ``nulls``; numeric columns add ``min``,
``max``, ``mean`` and ``std``; strings add ``distinct`` and the ``top`` values with their
counts; booleans add ``true``; dates and times add ``min`` and ``max``. Values are plain
JSON: NaN and infinities become ``None``, timestamps ISO strings.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TOP_VALUES = 5


def table_schema(table: pa.Table) -> dict[str, str]:
    """Column name to Arrow type string, in column order."""
    return {f.name: str(f.type) for f in table.schema}


def table_stats(table: pa.Table) -> dict[str, Any]:
    """``{"num_rows": n, "columns": {name: {...}}}`` for a canonical table."""
    columns = {name: column_stats(table.column(name)) for name in table.column_names}
    return {"num_rows": table.num_rows, "columns": columns}


def column_stats(column: pa.ChunkedArray) -> dict[str, Any]:
    """The statistics of one column (see the module docstring)."""
    t = column.type
    stats: dict[str, Any] = {"count": len(column) - column.null_count, "nulls": column.null_count}
    if stats["count"] == 0:
        return stats
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        numbers = column.cast(pa.float64()) if pa.types.is_decimal(t) else column
        extremes = pc.min_max(numbers)
        stats["min"] = _json(extremes["min"].as_py())
        stats["max"] = _json(extremes["max"].as_py())
        stats["mean"] = _json(pc.mean(numbers).as_py())
        stats["std"] = _json(pc.stddev(numbers, ddof=1).as_py()) if stats["count"] > 1 else None
    elif pa.types.is_temporal(t) and not pa.types.is_interval(t):
        extremes = pc.min_max(column)
        stats["min"] = _json(extremes["min"].as_py())
        stats["max"] = _json(extremes["max"].as_py())
    elif pa.types.is_boolean(t):
        stats["true"] = int(pc.sum(column).as_py() or 0)
    elif pa.types.is_large_string(t) or pa.types.is_string(t):
        stats["distinct"] = int(pc.count_distinct(column, mode="only_valid").as_py())
        stats["top"] = _top_values(column)
    return stats


def _top_values(column: pa.ChunkedArray) -> list[list[Any]]:
    counts = pc.value_counts(column.drop_null())
    order = pc.array_sort_indices(counts.field("counts"), order="descending")
    top = counts.take(order[:TOP_VALUES])
    values = top.field("values").to_pylist()
    freqs = top.field("counts").to_pylist()
    return [[value, count] for value, count in zip(values, freqs, strict=True)]


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
