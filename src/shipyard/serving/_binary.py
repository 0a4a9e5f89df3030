"""Triton's binary tensor extension: raw tensor bytes after the JSON header of a request or response.

A request whose header length is given in ``Inference-Header-Content-Length`` is split
there: the first bytes are the JSON inference request, the rest the inputs that carry
``"parameters": {"binary_data_size": N}``, back to back in input order. Numbers are
little-endian in row-major order; a ``BYTES`` element is a 4-byte little-endian length
and that many bytes. Responses use the same layout for outputs asked for in binary.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError
from shipyard.serving.validation import Array

HEADER = "inference-header-content-length"
# No request body under the size limit holds more; and a bound on the product of every
# dimension (zeros counted as one) keeps numpy's reshape from overflowing its index type.
MAX_ELEMENTS = 2**31 - 1
MAX_DIMENSIONS = 32
NUMPY_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request body.

    Raises:
        InvalidInputError: the header length is not a number within the body.
    """
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        raise InvalidInputError(
            f"Inference-Header-Content-Length must be an integer, got {header_length!r}", field="headers"
        ) from None
    if not 0 < size <= len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length is {size} but the body has {len(body)} bytes", field="headers"
        )
    return body[:size], body[size:]


def shape_problem(name: str, shape: Any) -> str | None:
    """What is wrong with a tensor's declared ``shape``, or ``None`` when it is usable.

    Checked before any arithmetic on it: a shape is a short list of non-negative
    integers whose dimensions multiply to at most ``MAX_ELEMENTS``.
    """
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r}"
    if len(shape) > MAX_DIMENSIONS:
        return f"input {name!r}: 'shape' has {len(shape)} dimensions, at most {MAX_DIMENSIONS} are accepted"
    if math.prod(max(d, 1) for d in shape) > MAX_ELEMENTS:
        return f"input {name!r}: shape {shape} is too large (at most {MAX_ELEMENTS} elements)"
    return None


def decode_tensor(name: str, datatype: str, shape: Sequence[int], chunk: bytes) -> Array:
    """One input's binary bytes as an array of ``shape``.

    Raises:
        InvalidInputError: the shape is unusable, or the byte count does not fit the shape and datatype.
    """
    problem = shape_problem(name, list(shape))
    if problem is not None:
        raise InvalidInputError(problem, field=name)
    count = math.prod(shape)
    if datatype == "BYTES":
        values = _split_bytes(name, chunk)
        if len(values) != count:
            raise InvalidInputError(
                f"input {name!r}: shape {list(shape)} holds {count} elements, the binary data has {len(values)}",
                field=name,
            )
        array = np.empty(count, dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise InvalidInputError(
            f"input {name!r}: shape {list(shape)} of {datatype} needs {count * dtype.itemsize} bytes, got {len(chunk)}",
            field=name,
        )
    return np.frombuffer(chunk, dtype=dtype).reshape(shape)


def _split_bytes(name: str, chunk: bytes) -> list[bytes]:
    values, offset = [], 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise InvalidInputError(f"input {name!r}: truncated BYTES element length", field=name)
        (size,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        if offset + size > len(chunk):
            raise InvalidInputError(f"input {name!r}: a BYTES element runs past the data", field=name)
        values.append(chunk[offset : offset + size])
        offset += size
    return values


def encode_tensor(array: Array, datatype: str) -> bytes:
    """An output's bytes in the extension's layout."""
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)))
            parts.append(raw)
        return b"".join(parts)
    dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def take_binary(inputs: Sequence[dict[str, Any]], tail: bytes) -> list[bytes | None]:
    """Each input's slice of the binary tail (``None`` for inputs sent as JSON ``data``).

    Raises:
        InvalidInputError: the sizes declared do not add up to the tail's length.
    """
    chunks: list[bytes | None] = []
    offset = 0
    for item in inputs:
        parameters = item.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            chunks.append(None)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(tail):
            raise InvalidInputError(
                f"input {item.get('name')!r}: binary_data_size {size!r} does not fit the {len(tail)} bytes "
                "after the JSON header",
                field="inputs",
            )
        chunks.append(tail[offset : offset + size])
        offset += size
    if offset != len(tail):
        raise InvalidInputError(
            f"the body has {len(tail) - offset} bytes after the JSON header that no input claims", field="inputs"
        )
    return chunks
