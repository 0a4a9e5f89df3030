"""Online reads (one batched read per view) and pushes of fresh rows to the online store."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shipyard.errors import InvalidInputError
from shipyard.features._arrow import ARROW_TYPES, decode_column, encode_rows, entity_keys, epoch_us
from shipyard.features._offline import require_join_keys
from shipyard.features._ondemand import compute
from shipyard.features.models import FeatureView, OnDemandFeatureView
from shipyard.features.online import OnlineRow, OnlineStore

if TYPE_CHECKING:
    import pandas as pd

PRESENT, MISSING, EXPIRED = "present", "missing", "expired"
_ACCEPTS = {
    "int": pa.types.is_integer,
    "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "bool": pa.types.is_boolean,
    "timestamp": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


@dataclass(frozen=True, slots=True)
class OnlineResponse:
    """Feature values per entity row, and per value its status: present, missing or expired."""

    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]

    def to_dict(self) -> dict[str, list[Any]]:
        """Each column (entity keys, then features) as a list, one item per entity row."""
        return {name: list(column) for name, column in self.values.items()}

    def to_pandas(self) -> pd.DataFrame:
        """The values as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.values)


def read_view(
    online: OnlineStore, view: FeatureView, entity: pa.Table, now_us: int
) -> tuple[dict[str, pa.Array], list[str]]:
    """The view's features for each entity row (nulls where missing or expired) and each row's status."""
    require_join_keys(view, entity, "entity_rows")
    rows = online.read(view.name, entity_keys(entity, view.join_keys))
    oldest = None if view.max_age is None else now_us - int(view.max_age.total_seconds() * 1_000_000)
    statuses: list[str] = []
    payloads: list[str] = []
    for row in rows:
        if row is None:
            statuses.append(MISSING)
        elif oldest is not None and row.event_us < oldest:
            statuses.append(EXPIRED)
        else:
            statuses.append(PRESENT)
            payloads.append(row.payload)
    # One parse of one JSON array: a parse per row costs more than the read itself.
    present = iter(json.loads("[" + ",".join(payloads) + "]"))
    decoded: list[dict[str, Any] | None] = [next(present) if s == PRESENT else None for s in statuses]
    columns = {
        f.name: decode_column([None if d is None else d.get(f.name) for d in decoded], f.dtype) for f in view.schema
    }
    return columns, statuses


def on_demand_inputs(
    view: OnDemandFeatureView, fetched: dict[tuple[str, str], pa.Array], request: pa.Table
) -> dict[str, pa.Array | pa.ChunkedArray]:
    """The columns an on-demand view's function reads: its sources' features and request values."""
    inputs: dict[str, pa.Array | pa.ChunkedArray] = {}
    for source in view.sources:
        for feature in source.features:
            inputs[feature] = fetched[(source.name, feature)]
    for field in view.request_schema:
        if field.name in request.column_names:
            inputs[field.name] = request.column(field.name)
    return inputs


def run_on_demand(
    view: OnDemandFeatureView, fetched: dict[tuple[str, str], pa.Array], request: pa.Table
) -> dict[str, pa.Array]:
    """The on-demand view's features, from already fetched features and the request's values."""
    return compute(view, on_demand_inputs(view, fetched, request))


def check_push(view: FeatureView, table: pa.Table) -> pa.Table:
    """The rows to push, typed as the view declares; every problem is reported before anything is written."""
    needed = [*view.join_keys, view.timestamp_field, *view.features]
    problems = [f"column {c!r} is missing" for c in needed if c not in table.column_names]
    ts = view.timestamp_field
    if ts in table.column_names and not _ACCEPTS["timestamp"](table.schema.field(ts).type):
        problems.append(f"column {ts!r} has type {table.schema.field(ts).type}, expected timestamp")
    for f in view.schema:
        if f.name in table.column_names:
            actual = table.schema.field(f.name).type
            if not (pa.types.is_null(actual) or _ACCEPTS[f.dtype](actual)):
                problems.append(f"column {f.name!r} has type {actual}, expected {f.dtype}")
    if problems:
        raise InvalidInputError(
            f"cannot push to feature view {view.name!r}: {'; '.join(problems)}; nothing was written", field="df"
        )
    return pa.table({f.name: table.column(f.name).cast(ARROW_TYPES[f.dtype]) for f in view.schema})


def push_rows(online: OnlineStore, view: FeatureView, table: pa.Table) -> int:
    """Write the rows of ``table`` to the online store; the newest value per entity wins."""
    features = check_push(view, table)
    keys = entity_keys(table, view.join_keys)
    events = epoch_us(table.column(view.timestamp_field))
    created_field = view.created_timestamp_field
    if created_field and created_field in table.column_names:
        created: Sequence[int | None] = epoch_us(table.column(created_field))
    else:
        # A later push of the same event time replaces an earlier one.
        created = [int(time.time() * 1_000_000)] * table.num_rows
    payloads = encode_rows(features, view.features, [f.dtype for f in view.schema])
    rows = [
        OnlineRow(key, event, created_us or 0, payload)
        for key, event, created_us, payload in zip(keys, events, created, payloads, strict=True)
        if event is not None
    ]
    online.write(view.name, rows)
    return len(rows)


def push_offline(view: FeatureView, table: pa.Table) -> Path:
    """Add the rows as a new Parquet file in the folder the view's FileSource reads."""
    import pyarrow.parquet as pq

    from shipyard.features.sources import FileSource

    source = view.source
    folder = None
    if isinstance(source, FileSource) and source.file_format == "parquet":
        folder = Path(source.path)
        if not folder.is_dir() and "*" in folder.name and "*" not in str(folder.parent):
            folder = folder.parent  # a glob such as data/*.parquet: the new file matches it
    if folder is None or not folder.is_dir():
        raise InvalidInputError(
            f"cannot push offline to feature view {view.name!r}: its source must be a FileSource over a folder "
            "(or a glob) of Parquet files",
            field="to",
        )
    columns = [*view.join_keys, view.timestamp_field]
    if view.created_timestamp_field and view.created_timestamp_field in table.column_names:
        columns.append(view.created_timestamp_field)
    typed = check_push(view, table)
    out = pa.table([*(table.column(c) for c in columns), *typed.columns], names=[*columns, *typed.column_names])
    name = f"push-{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    # Written under a name the source does not read, then renamed: readers never see half a file.
    tmp = folder / f".{name}.tmp"
    pq.write_table(out, tmp)
    final = folder / f"{name}.parquet"
    tmp.rename(final)
    return final
