"""The content digest of a table: sha256 over a canonical encoding of its logical values.

Hashing Arrow buffers as they lie in memory is not enough: pandas leaves NaN under a null
float, polars leaves set bits past the end of a validity bitmap, and chunk boundaries move
with how the table was built. So the digest covers only what a reader can observe: the
column names and types, the row count, then for each window of rows and each column its
validity mask and its values with nulls filled by a fixed value. Nested types recurse into
their children. Every piece is length-prefixed so no two encodings run together.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Bump when the encoding changes: old digests then stay valid for the data they named.
ENCODING = b"shipyard-dataset-digest/1\n"
WINDOW_ROWS = 1 << 16


def table_digest(table: pa.Table) -> str:
    """The sha256 hex digest of a canonical table's content (see the module docstring).

    Example:
        >>> table_digest(pa.table({"a": [1, 2]})) == table_digest(pa.table({"a": [1, 2]}))
        True
    """
    h = hashlib.sha256(ENCODING)
    header = {"columns": [[f.name, str(f.type)] for f in table.schema], "rows": table.num_rows}
    _segment(h, json.dumps(header, separators=(",", ":")).encode())
    for start in range(0, table.num_rows, WINDOW_ROWS):
        for column in table.slice(start, WINDOW_ROWS).columns:
            _encode(h, column.combine_chunks())
    return h.hexdigest()


def _segment(h: Any, data: bytes | memoryview) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _numpy_bytes(arr: pa.Array) -> bytes:
    return bytes(arr.to_numpy(zero_copy_only=False).tobytes())


def _encode(h: Any, arr: pa.Array) -> None:
    # An all-valid array writes an empty mask; one with nulls writes one byte per row (> 0 bytes).
    _segment(h, _numpy_bytes(pc.is_valid(arr)) if arr.null_count else b"")
    t = arr.type
    if pa.types.is_null(t):
        return
    if isinstance(t, pa.ExtensionType):
        _encode(h, arr.storage)
    elif pa.types.is_boolean(t):
        _segment(h, _numpy_bytes(pc.fill_null(arr, False) if arr.null_count else arr))
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        _segment(h, _numpy_bytes(pc.fill_null(arr, 0) if arr.null_count else arr))
    elif pa.types.is_temporal(t) and not pa.types.is_interval(t):
        integers = arr.view(pa.int64() if t.bit_width == 64 else pa.int32())
        _segment(h, _numpy_bytes(pc.fill_null(integers, 0) if arr.null_count else integers))
    elif pa.types.is_decimal(t):
        _encode_binary(h, arr.cast(pa.large_string()))
    elif _is_binary_like(t):
        _encode_binary(h, arr)
    elif pa.types.is_large_list(t) or pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
        _segment(h, _numpy_bytes(pc.fill_null(pc.list_value_length(arr), 0).cast(pa.int64())))
        _encode(h, pc.list_flatten(arr))
    elif pa.types.is_struct(t):
        for child in arr.flatten():
            _encode(h, child)
    else:
        _segment(h, _ipc_bytes(arr))


def _is_binary_like(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary_view(t)
    )


def _encode_binary(h: Any, arr: pa.Array) -> None:
    values = arr.cast(pa.large_binary())
    if values.null_count:
        values = pc.fill_null(values, b"")
    _segment(h, _numpy_bytes(pc.binary_length(values)))
    data = values.buffers()[2]
    if len(values) == 0 or data is None:
        _segment(h, b"")
        return
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64, count=len(values) + 1, offset=values.offset * 8)
    _segment(h, memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def _ipc_bytes(arr: pa.Array) -> bytes:
    # Types without a canonical encoding above (maps, unions, intervals) fall back to Arrow IPC.
    batch = pa.RecordBatch.from_arrays([arr], names=["_"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())
