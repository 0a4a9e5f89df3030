"""Hold request input to a model's signature before it reaches the model.

Every problem is reported at once, each naming its column: a missing column, an
unexpected one, a value of the wrong type, columns of different lengths. The checks
run per request, in plain numpy, so a request is refused before it joins a batch and
one bad request never fails the others in its batch.

Example:
    >>> from shipyard.registry.models import ColumnSpec, Signature
    >>> sig = Signature(inputs=(ColumnSpec("x", "float"), ColumnSpec("n", "integer")))
    >>> checked = check_columns({"x": [1, 2.5], "n": [3, 4]}, sig)
    >>> checked.rows, checked.data["x"].dtype.name
    (2, 'float64')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError, SchemaMismatchError
from shipyard.registry.models import Signature

Array = np.ndarray[Any, Any]
_KIND_NAMES = {
    "f": "float",
    "i": "integer",
    "u": "integer",
    "b": "boolean",
    "U": "string",
    "S": "bytes",
    "M": "datetime",
}
_NUMBER = (int, float)
KEY = "key"  # an entity id (a request to a model fed by its feature service): integers or strings
_EXPECTED = {KEY: "an entity id (integers or strings)"}


@dataclass(frozen=True, slots=True, eq=False)
class Columns:
    """Validated input: one 1-D array per column, in the signature's order, all ``rows`` long.

    ``matrix``, when set, holds the same values as one 2-D array (columns in the
    signature's order, ``data`` being its column views): numeric rows arrive that way,
    and a batch of them is then one ``concatenate`` and one model input, not one per column.
    """

    data: dict[str, Array]
    rows: int
    matrix: Array | None = None


def check_columns(raw: Mapping[str, Any], signature: Signature | None, *, model: str = "the model") -> Columns:
    """Check columns (name to list or 1-D array) against ``signature`` and type them.

    Integers are accepted where floats are expected, whole floats where integers are,
    ``None`` (missing) where floats are; ISO strings where datetimes are.

    Raises:
        SchemaMismatchError: a column is missing, unexpected or mistyped, or lengths differ.
    """
    problems: list[str] = []
    data: dict[str, Array] = {}
    if signature is None:
        for name, values in raw.items():
            array = _as_array(name, values, problems)
            if array is not None:
                data[name] = array
    else:
        expected = signature.input_names
        for spec in signature.inputs:
            if spec.name not in raw:
                problems.append(f"missing column {spec.name!r} ({_EXPECTED.get(spec.type, spec.type)})")
                continue
            array = _as_array(spec.name, raw[spec.name], problems)
            if array is not None:
                converted = _convert(spec.name, array, spec.type, problems)
                if converted is not None:
                    data[spec.name] = converted
        problems.extend(
            f"unexpected column {name!r}; the model takes: {', '.join(expected)}"
            for name in raw
            if name not in expected
        )
    rows = _rows(data, problems)
    if problems:
        raise SchemaMismatchError(
            f"input does not match the signature of {model}: " + "; ".join(problems), problems=problems
        )
    return Columns(data, rows)


def _rows(data: Mapping[str, Array], problems: list[str]) -> int:
    lengths = {name: len(array) for name, array in data.items()}
    if not lengths:
        if not problems:
            problems.append("no input columns")
        return 0
    distinct = set(lengths.values())
    if len(distinct) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        problems.append(f"columns have different lengths: {listed}")
    elif 0 in distinct:
        problems.append("input has no rows")
    return max(distinct)


def _as_array(name: str, values: Any, problems: list[str]) -> Array | None:
    if isinstance(values, np.ndarray):
        array = values
    elif isinstance(values, list | tuple):
        try:
            array = np.asarray(values)
        except ValueError:  # ragged nested lists
            problems.append(f"column {name!r} must be a flat list of values")
            return None
    else:
        array = np.asarray([values])  # one record's scalar
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        problems.append(f"column {name!r} must be a flat list of values, got shape {list(array.shape)}")
        return None
    return array


def _kind_name(array: Array) -> str:
    if array.dtype.kind != "O":
        return _KIND_NAMES.get(array.dtype.kind, str(array.dtype.name))
    kinds = {_value_kind(v) for v in array.tolist()}
    return " and ".join(sorted(kinds)) if len(kinds) > 1 else kinds.pop()


def _value_kind(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, _NUMBER):
        return "integer" if isinstance(value, int) else "float"
    if isinstance(value, str | bytes):
        return "string"
    return type(value).__name__


def _convert(name: str, array: Array, expected: str, problems: list[str]) -> Array | None:
    convert = _CONVERTERS.get(expected)
    converted = None if convert is None else convert(array)
    if converted is None:
        problems.append(f"column {name!r} expected {_EXPECTED.get(expected, expected)}, got {_kind_name(array)}")
    return converted


def _floats(array: Array) -> Array | None:
    kind = array.dtype.kind
    if kind in "fiu":
        return array.astype(np.float64, copy=False)
    if kind == "O" and all(v is None or (isinstance(v, _NUMBER) and not isinstance(v, bool)) for v in array):
        return np.array([np.nan if v is None else v for v in array], dtype=np.float64)
    return None


def _integers(array: Array) -> Array | None:
    kind = array.dtype.kind
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    if kind == "f" and bool(np.isfinite(array).all() and (array == np.round(array)).all()):
        return array.astype(np.int64)
    return None


def _booleans(array: Array) -> Array | None:
    return array if array.dtype.kind == "b" else None


def _keys(array: Array) -> Array | None:
    """Entity ids: integers stay integers, text stays text (online keys are their text, so 42 and "42" match)."""
    kind = array.dtype.kind
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    if kind not in "USO":
        return None
    ids: list[object] = []
    for value in array.tolist():
        if isinstance(value, bytes):  # a v2 BYTES tensor in binary
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        ids.append(value)
    result = np.empty(len(ids), dtype=object)
    result[:] = ids
    return result


def _strings(array: Array) -> Array | None:
    kind = array.dtype.kind
    if kind == "U":
        return array.astype(object)
    if kind == "S":
        array = array.astype(object)
        kind = "O"
    if kind != "O":
        return None
    out = []
    for value in array.tolist():
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if value is not None and not isinstance(value, str):
            return None
        out.append(value)
    result = np.empty(len(out), dtype=object)
    result[:] = out
    return result


def _datetimes(array: Array) -> Array | None:
    if array.dtype.kind == "M":
        return array.astype("datetime64[ns]")
    if array.dtype.kind not in "UO" or not all(isinstance(v, str) for v in array.tolist()):
        return None
    try:
        return array.astype("datetime64[ns]")
    except ValueError:
        return None


_CONVERTERS: dict[str, Callable[[Array], Array | None]] = {
    "float": _floats,
    "integer": _integers,
    "boolean": _booleans,
    "string": _strings,
    "datetime": _datetimes,
    KEY: _keys,
}


def numeric_rows(names: Any, rows: Any, signature: Signature | None) -> Columns | None:
    """Rows of numbers as checked columns in one numpy call; ``None`` when the general path must decide.

    Taken when every signature column is ``float`` (or every one ``integer``), ``names``
    is absent or the signature's own order, and every row is a list of that many plain
    numbers (no booleans, strings or ``None``): exactly the input :func:`check_columns`
    would accept and convert the same way, so anything else falls back to it and to its
    error messages.
    """
    if signature is None or not isinstance(rows, list) or not rows:
        return None
    types = {spec.type for spec in signature.inputs}
    if types == {"float"}:
        allowed: tuple[type, ...] = (float, int)
        dtype: Any = np.float64
    elif types == {"integer"}:
        allowed, dtype = (int,), np.int64
    else:
        return None
    expected = signature.input_names
    if names is not None and names != expected:
        return None
    width = len(expected)
    for row in rows:
        if type(row) is not list or len(row) != width or not all(type(v) in allowed for v in row):
            return None
    try:
        matrix = np.array(rows, dtype=dtype)
    except OverflowError:  # an integer beyond int64: the general path says which column
        return None
    return Columns(dict(zip(expected, matrix.T, strict=True)), len(rows), matrix)


def numeric_records(records: Any, signature: Signature | None) -> Columns | None:
    """:func:`numeric_rows` for ``[{"a": 1, "b": 2}, ...]`` holding exactly the signature's columns."""
    if signature is None or not isinstance(records, list) or not records:
        return None
    expected = signature.input_names
    try:
        rows = [[record[name] for name in expected] for record in records if len(record) == len(expected)]
    except (KeyError, TypeError):
        return None
    return numeric_rows(None, rows, signature) if len(rows) == len(records) else None


def columns_from_records(records: Any) -> dict[str, list[Any]]:
    """``[{"a": 1, "b": 2}, ...]`` as columns; a key absent from some records is a problem.

    Raises:
        InvalidInputError: ``records`` is not a non-empty list of objects.
        SchemaMismatchError: some records lack a key others have.
    """
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise InvalidInputError("'records' must be a non-empty list of objects (one per row)", field="records")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns: dict[str, list[Any]] = {}
    problems = []
    for name in names:
        absent = [i for i, record in enumerate(records) if name not in record]
        if absent:
            shown = ", ".join(map(str, absent[:10])) + (", ..." if len(absent) > 10 else "")
            problems.append(f"column {name!r} is missing from records {shown}")
        columns[name] = [record.get(name) for record in records]
    if problems:
        raise SchemaMismatchError("records do not all have the same columns: " + "; ".join(problems), problems=problems)
    return columns


def columns_from_split(names: Any, rows: Any, signature: Signature | None) -> dict[str, Array | list[Any]]:
    """``{"columns": [...], "data": [[...], ...]}`` as columns; without names, the signature's order.

    Raises:
        InvalidInputError: ``data`` is not a list of rows, or ``columns`` not a list of names.
        SchemaMismatchError: a row's width differs from the number of columns.
    """
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise InvalidInputError("'data' must be a non-empty list of rows (lists of values)", field="data")
    if names is None:
        if signature is None:
            raise InvalidInputError("give 'columns': this model has no signature to name them", field="columns")
        names = signature.input_names
    elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInputError("'columns' must be a list of column names", field="columns")
    widths = {len(r) for r in rows}
    if widths != {len(names)}:
        problems = [f"rows must have {len(names)} values (one per column: {', '.join(names)}), got {sorted(widths)}"]
        raise SchemaMismatchError("input does not match its columns: " + problems[0], problems=problems)
    if len(set(names)) != len(names):
        raise InvalidInputError("'columns' names a column twice", field="columns")
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def positional(matrix: Array, signature: Signature | None, *, tensor: str) -> dict[str, Array]:
    """A 2-D tensor's columns named by the signature's order (models fitted on arrays).

    Raises:
        SchemaMismatchError: the tensor's width is not the number of signature columns.
    """
    names: Sequence[str] = signature.input_names if signature is not None else [f"f{i}" for i in range(matrix.shape[1])]
    if matrix.shape[1] != len(names):
        problem = f"input {tensor!r} has {matrix.shape[1]} columns, the model takes {len(names)}: {', '.join(names)}"
        raise SchemaMismatchError(f"input does not match the signature: {problem}", problems=[problem])
    return {name: matrix[:, i] for i, name in enumerate(names)}
