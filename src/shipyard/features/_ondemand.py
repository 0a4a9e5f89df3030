"""Running on-demand feature functions: the one code path shared by training and serving.

Both paths hand the function the same thing, a pandas DataFrame built from an Arrow table
whose columns have the declared types, and cast its answer back the same way, so a
feature computed for a training frame equals the one computed for a live request.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from shipyard.errors import InvalidInputError
from shipyard.features._arrow import ARROW_TYPES
from shipyard.features.models import OnDemandFeatureView


def input_columns(view: OnDemandFeatureView) -> dict[str, str]:
    """Each input column the function sees, with its declared type."""
    columns = {f.name: f.dtype for source in view.sources for f in source.schema}
    columns.update({f.name: f.dtype for f in view.request_schema})
    return columns


def compute(view: OnDemandFeatureView, inputs: Mapping[str, pa.Array | pa.ChunkedArray]) -> dict[str, pa.Array]:
    """The view's features for each row of ``inputs`` (one array per input column)."""
    typed = {}
    for name, dtype in input_columns(view).items():
        if name not in inputs:
            raise InvalidInputError(
                f"on-demand feature view {view.name!r} needs the request value {name!r}; pass it with the entity rows",
                field=name,
            )
        try:
            typed[name] = inputs[name].cast(ARROW_TYPES[dtype])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(
                f"on-demand feature view {view.name!r}: input {name!r} of type {inputs[name].type} is not {dtype}",
                field=name,
            ) from exc
    rows = len(next(iter(inputs.values()))) if inputs else 0
    frame = pa.table(typed).to_pandas() if typed else pa.table({"__n": pa.nulls(rows)}).to_pandas()
    out = view.function(frame)
    missing = [f.name for f in view.schema if f.name not in getattr(out, "columns", ())]
    if missing:
        raise InvalidInputError(
            f"on-demand feature view {view.name!r} returned no column {', '.join(map(repr, missing))}; "
            "its function must return a DataFrame with the columns of its schema",
            field="function",
        )
    if len(out) != rows:
        raise InvalidInputError(
            f"on-demand feature view {view.name!r} returned {len(out)} rows for {rows}; expected one per input row",
            field="function",
        )
    result = {}
    for f in view.schema:
        array = pa.array(out[f.name].reset_index(drop=True), from_pandas=True)
        try:
            result[f.name] = array.cast(ARROW_TYPES[f.dtype])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(
                f"on-demand feature view {view.name!r}: feature {f.name!r} of type {array.type} is not {f.dtype}",
                field=f.name,
            ) from exc
    return result
