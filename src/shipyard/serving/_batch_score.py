"""Score Arrow record batches: which columns feed the model, which are kept as ids, and one batch in, one out.

The input's Arrow schema is held to the model's signature before any row is read
(:func:`plan_columns`), so a file with a missing or mistyped column is refused at once;
each batch then goes through :func:`arrow_columns` (the same checked
:class:`~shipyard.serving.validation.Columns` the online server feeds its models) and
the serving model function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import InvalidInputError, ModelFailedError, SchemaMismatchError, ShipyardError
from shipyard.registry.models import Signature
from shipyard.serving.batcher import ModelFn
from shipyard.serving.validation import Array, Columns, check_columns

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Plan:
    """The columns a job reads: the model's inputs (signature order) and the id columns kept beside predictions."""

    inputs: tuple[str, ...]
    ids: tuple[str, ...]
    signature: Signature | None
    model: str
    method: str = "predict"

    @property
    def read_columns(self) -> list[str]:
        """Every column read from the input, each once."""
        return list(dict.fromkeys((*self.inputs, *self.ids)))


def arrow_kind(t: pa.DataType) -> str:
    """An Arrow type in the signature's five types (``integer``, ``float``, ...), else Arrow's own name."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return arrow_kind(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_null(t):
        return "missing"
    return str(t)


# (expected, got) pairs a batch may still turn into the expected type; whole floats are checked per batch.
_WIDENS = {("float", "integer"), ("float", "missing"), ("integer", "float")}


def plan_columns(
    schema: pa.Schema,
    signature: Signature | None,
    id_columns: list[str] | None,
    *,
    model: str,
    input_label: str,
    method: str = "predict",
) -> Plan:
    """Hold an input's columns to ``signature`` and pick the id columns, before reading any row.

    Without ``id_columns``, every input column that is not a model input is kept as an id.
    A model without a signature takes every column that is not an id.

    Raises:
        SchemaMismatchError: a model input is missing or has a type that cannot become the signature's.
        InvalidInputError: an id column is not in the input.
    """
    names = list(schema.names)
    missing_ids = [c for c in id_columns or [] if c not in names]
    if missing_ids:
        raise InvalidInputError(
            f"id column {missing_ids[0]!r} is not in input {input_label}; its columns are: {', '.join(names)}",
            field="id",
        )
    if signature is None:
        ids = list(id_columns or [])
        inputs = [c for c in names if c not in ids]
        return Plan(tuple(inputs), tuple(ids), None, model, method)
    problems = []
    for spec in signature.inputs:
        if spec.name not in names:
            problems.append(f"missing column {spec.name!r} ({spec.type})")
            continue
        got = arrow_kind(schema.field(spec.name).type)
        if got != spec.type and (spec.type, got) not in _WIDENS:
            problems.append(f"column {spec.name!r} expected {spec.type}, got {got}")
    if problems:
        raise SchemaMismatchError(
            f"input {input_label} does not match the signature of {model}: " + "; ".join(problems), problems=problems
        )
    inputs = signature.input_names
    ids = list(id_columns) if id_columns is not None else [c for c in names if c not in inputs]
    return Plan(tuple(inputs), tuple(ids), signature, model, method)


def arrow_columns(batch: pa.RecordBatch, signature: Signature | None, *, model: str = "the model") -> Columns:
    """An Arrow record batch as the checked columns a model function takes (the signature's columns, in order).

    Columns the signature does not name are ignored. When every input is a float and
    every column numeric, the batch becomes one 2-D float matrix (one model call on one
    array); anything else goes through :func:`~shipyard.serving.validation.check_columns`
    and its messages.

    Raises:
        SchemaMismatchError: a column is missing or a value does not fit its type.
    """
    wanted = signature.input_names if signature is not None else list(batch.schema.names)
    raw = {name: _numpy(batch.column(name)) for name in wanted if name in batch.schema.names}
    if (
        signature is not None
        and len(raw) == len(wanted)
        and all(spec.type == "float" for spec in signature.inputs)
        and all(array.dtype.kind in "fiu" for array in raw.values())
    ):
        matrix = np.column_stack([raw[name].astype(np.float64, copy=False) for name in wanted])
        return Columns(dict(zip(wanted, matrix.T, strict=True)), batch.num_rows, matrix)
    return check_columns(raw, signature, model=model)


def _numpy(column: Any) -> Array:
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    array: Array = column.to_numpy(zero_copy_only=False)
    return array


def output_names(prediction: Any, plan: Plan) -> list[str]:
    """The prediction columns' names: the signature's outputs when they fit, else ``prediction`` or ``prediction_i``."""
    if hasattr(prediction, "columns"):
        return [str(c) for c in prediction.columns]
    width = 1 if np.ndim(prediction) <= 1 else int(np.shape(prediction)[1])
    outputs = plan.signature.outputs if plan.signature is not None and plan.method == "predict" else ()
    if len(outputs) == width:
        return [spec.name for spec in outputs]
    return ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]


def prediction_arrays(prediction: Any, names: list[str], rows: int, *, model: str) -> Mapping[str, Any]:
    """The model's answer for one batch as one array per output column.

    Raises:
        SchemaMismatchError: the model answered a different number of rows or columns than before.
    """
    if hasattr(prediction, "columns"):
        arrays = {str(c): np.asarray(prediction[c]) for c in prediction.columns}
    else:
        array = np.asarray(prediction)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array.reshape(-1)
        arrays = {names[0]: array} if array.ndim == 1 else {n: array[:, i] for i, n in enumerate(names)}
    if list(arrays) != names or any(len(a) != rows for a in arrays.values()):
        shape = {n: len(a) for n, a in arrays.items()}
        raise SchemaMismatchError(
            f"{model} answered {shape} for {rows} rows; expected one value per row in columns {', '.join(names)}",
            problems=[f"prediction shape {shape}"],
        )
    return arrays


class BatchScorer:
    """Score one record batch after another with a model function; the output's column names fixed by the first."""

    def __init__(self, plan: Plan, fn: ModelFn) -> None:
        self.plan = plan
        self.fn = fn
        self.names: list[str] | None = None

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch's id columns beside its predictions."""
        import pyarrow as pa

        plan = self.plan
        columns = arrow_columns(batch.select(list(plan.inputs)), plan.signature, model=plan.model)
        try:
            prediction = self.fn(columns)
        except ShipyardError:
            raise
        except Exception as exc:
            raise ModelFailedError(f"{plan.model} failed on a batch: {type(exc).__name__}: {exc}") from exc
        if self.names is None:
            self.names = output_names(prediction, plan)
            clash = [n for n in self.names if n in plan.ids]
            if clash:
                raise InvalidInputError(
                    f"id column {clash[0]!r} has the name of a prediction column of {plan.model}; "
                    "rename it in the input or leave it out with --id",
                    field="id",
                )
        arrays = prediction_arrays(prediction, self.names, batch.num_rows, model=plan.model)
        kept = [batch.column(name) for name in plan.ids]
        values = [pa.array(a) for a in arrays.values()]
        return pa.RecordBatch.from_arrays([*kept, *values], names=[*plan.ids, *self.names])
