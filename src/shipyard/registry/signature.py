"""Signatures: infer a model's columns from an example, and hold later input to them.

Column types are normalized to five: ``integer``, ``float``, ``boolean``, ``string`` and
``datetime``, so a signature reads the same whichever library produced the data.

Unnamed input (a 2-D numpy array, a list of lists) is positional: when a signature is
inferred from it, its columns are named ``f0``, ``f1``, ... (XGBoost's convention), and
when such input is checked against a signature, its columns take the signature's names
in order.

Example:
    >>> import pandas as pd
    >>> sig = infer_signature(pd.DataFrame({"tenure": [3, 14], "plan": ["a", "b"]}))
    >>> [(c.name, c.type) for c in sig.inputs]
    [('tenure', 'integer'), ('plan', 'string')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, SchemaMismatchError
from shipyard.registry.models import ColumnSpec, Signature

if TYPE_CHECKING:
    import pandas as pd

# What pandas' infer_dtype says about object columns, in the five normalized types.
_INFERRED = {
    "string": "string",
    "bytes": "string",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "boolean": "boolean",
    "datetime64": "datetime",
    "datetime": "datetime",
    "date": "datetime",
}
_MISSING = "missing"  # a column holding only missing values: its type cannot be told
_ACCEPTED = "a pandas or polars DataFrame, a dict of lists, a list of dict records or a 2-D numpy array"


def column_type(values: pd.Series[Any]) -> str:
    """The normalized type of a column; ``"missing"`` when every value is missing, else a plain label.

    Example:
        >>> import pandas as pd
        >>> column_type(pd.Series([1.5, 2.0]))
        'float'
    """
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(pd.Series(dtype.categories))
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer"
    if kind == "f":
        return "float"
    if kind == "M":
        return "datetime"
    if kind == "m":
        return "timedelta"
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "empty":
        return _MISSING
    return _INFERRED.get(inferred, inferred)


def to_frame(data: Any, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Turn model input into a DataFrame with string column names.

    Args:
        data: A pandas or polars DataFrame, a pyarrow Table, a dict of lists (or of
            scalars, for one row), a list of dict records, a list of lists or a 2-D
            numpy array.
        names: Column names for unnamed (positional) input; ``f0``, ``f1``, ... when absent.

    Raises:
        InvalidInputError: ``data`` is none of the accepted shapes.
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "to_pandas") and not isinstance(data, np.ndarray):
        frame = data.to_pandas()
    elif isinstance(data, Mapping):
        values = list(data.values())
        one_row = bool(values) and all(np.ndim(v) == 0 for v in values)
        frame = pd.DataFrame([dict(data)]) if one_row else pd.DataFrame(dict(data))
    elif isinstance(data, list | tuple) and data and all(isinstance(r, Mapping) for r in data):
        frame = pd.DataFrame.from_records(list(data))
    elif isinstance(data, np.ndarray | list | tuple):
        return _array_frame(np.asarray(data, dtype=object if _ragged(data) else None), names)
    else:
        raise InvalidInputError(f"model input must be {_ACCEPTED}, got {type(data).__name__}", field="inputs")
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    return frame


def _ragged(data: Any) -> bool:
    return isinstance(data, list | tuple) and len({len(r) if isinstance(r, list | tuple) else -1 for r in data}) > 1


def _array_frame(array: Any, names: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    if array.ndim != 2 or array.shape[0] == 0:
        raise InvalidInputError(
            f"array input must be 2-D with at least one row (rows x columns), got shape {array.shape}", field="inputs"
        )
    width = array.shape[1]
    given = list(names or [])[:width]
    labels = given + [f"f{i}" for i in range(len(given), width)]
    # Object arrays (mixed rows) keep per-column types only after pandas re-infers them.
    frame = pd.DataFrame(array, columns=labels)
    return frame.infer_objects() if array.dtype == object else frame


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """The signature of a model from an example of its input and, optionally, of its output.

    Args:
        input_example: A DataFrame, a dict of lists, a list of dict records or a 2-D
            numpy array (whose columns are named ``f0``, ``f1``, ...).
        output: What the model returned for ``input_example``; outputs are left empty when ``None``.

    Raises:
        InvalidInputError: the example is empty, or a column's type cannot be told.

    Example:
        >>> import numpy as np
        >>> infer_signature(np.zeros((2, 3))).input_names
        ['f0', 'f1', 'f2']
    """
    import numpy as np
    import pandas as pd

    if isinstance(input_example, np.ndarray):
        named = False
    elif isinstance(input_example, list | tuple):
        named = bool(input_example) and all(isinstance(r, Mapping) for r in input_example)
    elif isinstance(input_example, pd.DataFrame):
        # scikit-learn treats non-string column labels as no names at all
        named = all(isinstance(c, str) for c in input_example.columns)
    else:
        named = True
    frame = to_frame(input_example)
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise InvalidInputError("input_example has no rows or no columns; give a few real rows", field="input_example")
    inputs = tuple(_spec(frame[name], name, "input_example") for name in frame.columns)
    outputs = () if output is None else infer_outputs(output)
    return Signature(inputs=inputs, outputs=outputs, input_format="dataframe" if named else "ndarray")


def infer_outputs(prediction: Any) -> tuple[ColumnSpec, ...]:
    """The output columns of a model from what it returned: ``prediction`` or ``prediction_0``, ``prediction_1``, ...

    Example:
        >>> import numpy as np
        >>> infer_outputs(np.array([0, 1]))
        (ColumnSpec(name='prediction', type='integer'),)
    """
    import numpy as np
    import pandas as pd

    if isinstance(prediction, pd.DataFrame):
        frame = prediction.rename(columns=str)
    elif isinstance(prediction, pd.Series):
        frame = prediction.to_frame(str(prediction.name) if prediction.name is not None else "prediction")
    else:
        array = np.asarray(prediction)
        if array.ndim == 0:
            array = array.reshape(1)
        if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
            frame = pd.DataFrame({"prediction": array.reshape(-1)})
        elif array.ndim == 2:
            frame = pd.DataFrame(array, columns=[f"prediction_{i}" for i in range(array.shape[1])]).infer_objects()
        else:
            return ()  # tensors of higher rank have no column form
    specs = []
    for name in frame.columns:
        kind = column_type(frame[name])
        if kind in _INFERRED.values():
            specs.append(ColumnSpec(name, kind))
    return tuple(specs)


def _spec(values: pd.Series[Any], name: str, where: str) -> ColumnSpec:
    kind = column_type(values)
    if kind == _MISSING:
        raise InvalidInputError(
            f"column {name!r} of {where} holds only missing values, so its type cannot be told; "
            "give rows with values or pass signature=",
            field=where,
        )
    if kind not in _INFERRED.values():
        raise InvalidInputError(
            f"column {name!r} of {where} has type {kind}; supported: integer, float, boolean, string, datetime",
            field=where,
        )
    return ColumnSpec(name, kind)


def _whole(values: pd.Series[Any]) -> bool:
    import numpy as np

    array = values.to_numpy(dtype="float64", na_value=np.nan)
    return bool(np.isfinite(array).all() and (array == np.round(array)).all())


def check_input(data: Any, signature: Signature, *, model: str = "the model") -> Any:
    """Hold input to a signature and shape it for the model.

    Missing and mistyped columns are all reported at once; extra columns are dropped;
    integers are accepted (and cast) where floats are expected, and so are floats with
    whole values (no NaN) where integers are, as a 2-D array of mixed columns arrives. Columns come back in
    the signature's order, as a DataFrame, or as a 2-D array for ``ndarray`` signatures.

    Raises:
        SchemaMismatchError: a column is missing or has the wrong type; the message names each.
        InvalidInputError: ``data`` is not an accepted shape.

    Example:
        >>> import pandas as pd
        >>> sig = Signature(inputs=(ColumnSpec("x", "float"),))
        >>> check_input({"x": [1, 2], "extra": ["a", "b"]}, sig).dtypes.to_dict()
        {'x': dtype('float64')}
    """
    frame = to_frame(data, signature.input_names)
    problems: list[str] = []
    casts: dict[str, str] = {}
    for spec in signature.inputs:
        if spec.name not in frame.columns:
            problems.append(f"missing column {spec.name!r}")
            continue
        got = column_type(frame[spec.name])
        if got == spec.type:
            continue
        if spec.type == "float" and got in {"integer", _MISSING}:
            casts[spec.name] = "float64"  # a safe widening: ints (and all-missing columns) fit in floats
        elif spec.type == "integer" and got == "float" and _whole(frame[spec.name]):
            casts[spec.name] = "int64"  # a 2-D array of mixed columns arrives all-float; whole values lose nothing
        elif got != _MISSING:
            problems.append(f"column {spec.name!r} expected {spec.type}, got {got}")
    if problems:
        raise SchemaMismatchError(
            f"input does not match the signature of {model}: " + "; ".join(problems), problems=problems
        )
    names = signature.input_names
    # Selecting columns copies the frame (milliseconds on pandas 3); skip it when already in order.
    checked = frame if list(frame.columns) == list(names) else frame.loc[:, names]
    if casts:
        checked = checked.astype(casts)
    return checked.to_numpy() if signature.input_format == "ndarray" else checked
