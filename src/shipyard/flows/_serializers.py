"""How task inputs and outputs become bytes: Parquet for tables, ``.npy`` for arrays, cloudpickle otherwise.

A serializer is picked per value, first match wins; a task may pass its own list. The
serializer's ``name`` is recorded with the value, so reading it back needs no guessing.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from typing import Any, Protocol

from shipyard.errors import InvalidInputError


class Serializer(Protocol):
    """Turns values it ``accepts`` into bytes and back."""

    name: str

    def accepts(self, value: Any) -> bool: ...
    def dumps(self, value: Any) -> bytes: ...
    def loads(self, data: bytes) -> Any: ...


_SCALARS = (int, float, str, bytes, bool, type(None), complex)


def _plain(value: Any, depth: int) -> bool:
    """True for builtin scalars and small builtin containers of them."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth == 0 or kind not in (list, tuple, dict) or len(value) > 64:
        return False
    if kind is dict:
        return all(_plain(k, depth - 1) and _plain(v, depth - 1) for k, v in value.items())
    return all(_plain(v, depth - 1) for v in value)


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


class CloudpickleSerializer:
    """Any picklable Python object (functions and lambdas included)."""

    name = "cloudpickle"

    def accepts(self, value: Any) -> bool:
        return True

    def dumps(self, value: Any) -> bytes:
        if _plain(value, 2):  # the C pickler is many times faster and the bytes are the same
            return pickle.dumps(value, protocol=5)
        import cloudpickle

        data: bytes = cloudpickle.dumps(value, protocol=5)
        return data

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class PandasParquetSerializer:
    """pandas DataFrames as Parquet (index kept)."""

    name = "parquet-pandas"

    def accepts(self, value: Any) -> bool:
        return _module_of(value) == "pandas" and type(value).__name__ == "DataFrame"

    def dumps(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        value.to_parquet(buffer)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))


class ArrowParquetSerializer:
    """PyArrow tables as Parquet."""

    name = "parquet-arrow"

    def accepts(self, value: Any) -> bool:
        return _module_of(value) == "pyarrow" and type(value).__name__ == "Table"

    def dumps(self, value: Any) -> bytes:
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(value, buffer)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data))


class NumpySerializer:
    """numpy arrays of plain dtypes as ``.npy`` (object arrays go to cloudpickle)."""

    name = "npy"

    def accepts(self, value: Any) -> bool:
        return _module_of(value) == "numpy" and type(value).__name__ == "ndarray" and not value.dtype.hasobject

    def dumps(self, value: Any) -> bytes:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)


DEFAULT_SERIALIZERS: tuple[Serializer, ...] = (
    PandasParquetSerializer(),
    ArrowParquetSerializer(),
    NumpySerializer(),
    CloudpickleSerializer(),
)


def serialize(value: Any, serializers: Sequence[Serializer], *, what: str) -> tuple[str, bytes]:
    """The name of the first serializer that accepts ``value`` and the bytes it makes."""
    for serializer in serializers:
        if serializer.accepts(value):
            try:
                return serializer.name, serializer.dumps(value)
            except Exception as exc:
                raise InvalidInputError(
                    f"{what} is a {type(value).__module__}.{type(value).__qualname__} that serializer "
                    f"{serializer.name!r} cannot store ({type(exc).__name__}: {exc}); return plain data "
                    "(numbers, strings, lists, dicts, DataFrames, arrays), or pass serializers=[...] to @task",
                    field="output",
                ) from exc
    names = ", ".join(s.name for s in serializers) or "none"
    raise InvalidInputError(
        f"{what} is a {type(value).__qualname__} that none of the serializers ({names}) accepts", field="output"
    )


def deserialize(name: str, data: bytes, serializers: Sequence[Serializer] = DEFAULT_SERIALIZERS) -> Any:
    """Read back bytes written by the serializer called ``name``."""
    for serializer in (*serializers, *DEFAULT_SERIALIZERS):
        if serializer.name == name:
            return serializer.loads(data)
    known = ", ".join(dict.fromkeys(s.name for s in (*serializers, *DEFAULT_SERIALIZERS)))
    raise InvalidInputError(f"no serializer named {name!r} is known here; known: {known}", field="serializer")
