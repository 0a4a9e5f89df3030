"""The work behind FeatureStore's offline, materialization and online calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from shipyard.errors import InvalidInputError
from shipyard.features._arrow import ARROW_TYPES
from shipyard.features._lookup import PRESENT, OnlineResponse, read_view, run_on_demand
from shipyard.features._offline import column_name, connect, historical_reader
from shipyard.features.models import FeatureView
from shipyard.features.online import OnlineStore
from shipyard.store.entities import Materialization

if TYPE_CHECKING:
    from shipyard.features._resolve import Resolved
    from shipyard.features.api import FeatureStore


def output_names(resolved: Resolved, taken: Sequence[str], full_feature_names: bool) -> dict[tuple[str, str], str]:
    """The column name of each requested feature; a clash asks for ``full_feature_names``."""
    names = {ref: (f"{ref[0]}__{ref[1]}" if full_feature_names else ref[1]) for ref in resolved.refs}
    seen = set(taken)
    for ref, name in names.items():
        if name in seen:
            raise InvalidInputError(
                f"feature {ref[0]}:{ref[1]} would be column {name!r}, which another column already has; "
                "pass full_feature_names=True to name columns view__feature",
                field="features",
            )
        seen.add(name)
    return names


def _batch_columns(batch: pa.RecordBatch, resolved: Resolved, request: pa.Table) -> dict[tuple[str, str], pa.Array]:
    fetched = {(v.name, f): batch.column(column_name(v.name, f)) for v, fs in resolved.fetch for f in fs}
    for odfv in resolved.on_demand:
        for name, array in run_on_demand(odfv, fetched, request).items():
            fetched[(odfv.name, name)] = array
    return fetched


def output_schema(entity: pa.Table, resolved: Resolved, names: Mapping[tuple[str, str], str]) -> pa.Schema:
    """The training frame's schema: the entity columns as given, then each feature's declared type."""
    dtypes = {(v.name, f.name): f.dtype for v, _ in resolved.fetch for f in v.schema}
    dtypes.update({(o.name, f.name): f.dtype for o in resolved.on_demand for f in o.schema})
    features = [pa.field(name, ARROW_TYPES[dtypes[ref]]) for ref, name in names.items()]
    return pa.schema([*entity.schema, *features])


def historical_batches(
    entity: pa.Table, resolved: Resolved, *, timestamp_field: str, names: Mapping[tuple[str, str], str]
) -> Iterator[pa.RecordBatch]:
    """The point-in-time join streamed in batches, on-demand features computed batch by batch."""
    schema = output_schema(entity, resolved, names)
    con = connect()
    try:
        offset = 0
        for batch in historical_reader(con, entity, timestamp_field, resolved.fetch):
            # DuckDB answers in the entity frame's order, so a batch is the next slice of it.
            if batch.num_rows and batch.column(0)[0].as_py() != offset:
                raise RuntimeError(f"point-in-time join returned row {batch.column(0)[0]} where {offset} was due")
            request = entity.slice(offset, batch.num_rows)
            offset += batch.num_rows
            fetched = _batch_columns(batch, resolved, request)
            features = [fetched[ref].cast(schema.field(name).type) for ref, name in names.items()]
            yield from pa.Table.from_arrays([*request.columns, *features], schema=schema).to_batches()
    finally:
        con.close()


def historical(
    entity: pa.Table, resolved: Resolved, *, timestamp_field: str, full_feature_names: bool
) -> pa.RecordBatchReader:
    """The training frame as a stream of record batches (the DuckDB connection lives as long)."""
    names = output_names(resolved, entity.column_names, full_feature_names)
    batches = historical_batches(entity, resolved, timestamp_field=timestamp_field, names=names)
    return pa.RecordBatchReader.from_batches(output_schema(entity, resolved, names), batches)


def materialize(
    store: FeatureStore,
    views: Sequence[FeatureView],
    starts: Mapping[str, int | None],
    end_us: int,
    progress: Callable[[str, int, int], None] | None,
) -> list[Materialization]:
    """Materialize each view and record how far it got."""
    from shipyard.features._materialize import materialize_view

    records = []
    con = connect()
    try:
        for view in views:
            record = materialize_view(
                con, view, store.online, start_us=starts[view.name], end_us=end_us, progress=progress
            )
            store.stores.features.record_materializations([record])
            records.append(record)
    finally:
        con.close()
    return records


def online_features(
    online: OnlineStore, entity: pa.Table, resolved: Resolved, *, full_feature_names: bool
) -> OnlineResponse:
    """Read each view once for all entity rows, then run the on-demand views."""
    names = output_names(resolved, entity.column_names, full_feature_names)
    now_us = int(time.time() * 1_000_000)
    fetched: dict[tuple[str, str], pa.Array] = {}
    statuses: dict[tuple[str, str], list[str]] = {}
    for view, features in resolved.fetch:
        columns, view_status = read_view(online, view, entity, now_us)
        for f in features:
            fetched[(view.name, f)] = columns[f]
            statuses[(view.name, f)] = view_status
    for odfv in resolved.on_demand:
        for name, array in run_on_demand(odfv, fetched, entity).items():
            fetched[(odfv.name, name)] = array
            statuses[(odfv.name, name)] = [PRESENT] * entity.num_rows
    values = {c: entity.column(c).to_pylist() for c in entity.column_names}
    values.update({name: fetched[ref].to_pylist() for ref, name in names.items()})
    return OnlineResponse(values, {name: statuses[ref] for ref, name in names.items()})
