"""Batch prediction spread over Ray: one Ray task per partition (a file, or a run of a Parquet file's row groups).

Ray is reached the way the flows' Ray executor reaches it (a Ray already initialized in
the process, a ``ray://`` address, ``RAY_ADDRESS``, else a local Ray kept for the
process). The loaded model is put in Ray's object store once; each task streams its
partition in batches and writes its own Parquet part into the job's temporary folder,
which the driver renames into place once every part is written. Workers must see that
folder: on a cluster, the output must be on a shared filesystem.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ShipyardError
from shipyard.registry import LoadedModel
from shipyard.serving._batch_io import BatchWriter, Source, TempOutput, pa_schema_of, read_file
from shipyard.serving._batch_score import BatchScorer, Plan
from shipyard.serving._models import model_function

if TYPE_CHECKING:
    import pyarrow as pa

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class Partition:
    """One Ray task's share of the input: a file and, for Parquet, some of its row groups."""

    file: str
    format: str
    row_groups: tuple[int, ...] | None
    rows: int | None


def partitions(source: Source, *, workers: int) -> list[Partition]:
    """The input's files, Parquet files cut at row groups into about ``2 * workers`` partitions of similar size."""
    if source.format != "parquet":
        return [Partition(f, source.format, None, None) for f in source.files]
    import pyarrow.parquet as pq

    groups: list[tuple[str, int, int]] = []
    for file in source.files:
        meta = pq.ParquetFile(file).metadata
        groups.extend((file, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups))
    total = sum(rows for _, _, rows in groups)
    target = max(1, math.ceil(total / max(1, 2 * workers)))
    parts: list[Partition] = []
    current: list[int] = []
    current_file, current_rows = "", 0
    for file, index, rows in groups:
        if current and (file != current_file or current_rows >= target):
            parts.append(Partition(current_file, "parquet", tuple(current), current_rows))
            current, current_rows = [], 0
        current_file = file
        current.append(index)
        current_rows += rows
    if current:
        parts.append(Partition(current_file, "parquet", tuple(current), current_rows))
    return parts


def score_partition(
    model: LoadedModel, plan: Plan, part: Partition, schema: pa.Schema, out: str, batch_size: int
) -> int:
    """The body of each Ray task: stream one partition through the model into one Parquet part; the rows written."""
    scorer = BatchScorer(plan, model_function(model, plan.method))
    writer = BatchWriter(Path(out), "parquet")
    try:
        for batch in read_file(part.file, part.format, schema, batch_size, row_groups=part.row_groups):
            writer.write(scorer.score(batch))
    finally:
        writer.close()
    return writer.rows


def predict_on_ray(
    source: Source,
    plan: Plan,
    model: LoadedModel,
    temp: TempOutput,
    *,
    batch_size: int,
    progress: Progress | None,
    address: str | None = None,
) -> int:
    """Score every partition as a Ray task writing ``temp``'s part files; the rows written."""
    from shipyard.flows.executors import RayExecutor

    RayExecutor(address).close()  # connects (or starts a local Ray) exactly as flows do; Ray stays up
    import ray

    workers = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    parts = partitions(source, workers=workers)
    total = sum(p.rows for p in parts if p.rows is not None) if all(p.rows is not None for p in parts) else None
    shared = ray.put(model)
    schema = pa_schema_of(source.schema, plan.read_columns)
    remote = ray.remote(score_partition).options(max_retries=0)
    pending: dict[Any, int] = {
        remote.remote(shared, plan, part, schema, str(temp.part(i)), batch_size): i for i, part in enumerate(parts)
    }
    done = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for handle in ready:
                pending.pop(handle)
                try:
                    done += int(ray.get(handle))
                except ray.exceptions.RayTaskError as exc:
                    # The task's own error (a value that does not fit the signature) reads as it would locally.
                    raise (exc.cause if isinstance(exc.cause, ShipyardError) else exc) from None
                if progress is not None:
                    progress(done, total)
    finally:
        for handle in pending:
            ray.cancel(handle, force=True)
    return done
