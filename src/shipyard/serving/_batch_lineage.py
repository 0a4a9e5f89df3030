"""A batch job's lineage: its input and output as dataset versions linked to the job's run, without loading either.

``log_dataset`` hashes a whole table in memory, which a job scoring a table larger than
memory cannot do. Here each side is one Parquet file streamed to disk (the input file
itself when it is one Parquet file; otherwise a copy written batch by batch), stored
as it is in the content-addressed artifact store, and its version is named by that
file's sha256. So the same input file always maps to the same version, and
``load_dataset("NAME@N")`` reads it back; a version logged by ``log_dataset`` from the
same rows has a different digest (the table's), hence its own number.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInputError
from shipyard.serving._batch_io import BatchWriter
from shipyard.store import Stores
from shipyard.store.entities import DatasetVersion, RunDataset

if TYPE_CHECKING:
    import pyarrow as pa

_MAX_NAME = 250


def dataset_name(label: str, given: str | None, *, field: str) -> str:
    """``given``, checked, or a name derived from a path (its stem) or ``query`` for SQL input."""
    if given is not None:
        if not given.strip() or "@" in given or len(given) > _MAX_NAME or given != given.strip():
            raise InvalidInputError(
                f"{field} must be a non-empty dataset name without '@' or surrounding spaces, got {given!r}",
                field=field,
            )
        return given
    if label.startswith("sql: "):
        return "query"
    path = Path(label.rstrip("/"))
    stem = path.stem if path.suffix else path.name
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.")
    return cleaned or "batch-data"


def parquet_copy(batches: Iterable[pa.RecordBatch], path: Path) -> int:
    """Write ``batches`` to one Parquet file at ``path``, one batch in memory at a time; the rows written."""
    writer = BatchWriter(path, "parquet")
    try:
        for batch in batches:
            writer.write(batch)
    finally:
        writer.close()
    return writer.rows


def register(
    stores: Stores,
    run_id: str,
    *,
    name: str,
    role: str,
    parquet: Path,
    source: str,
    num_rows: int,
    schema: pa.Schema,
) -> DatasetVersion:
    """Store ``parquet`` as the next version of dataset ``name`` (or find the version it already is) and link it.

    The version records the run that created it; the link says how the run used it
    (``input`` or ``output``).
    """
    digest, _ = stores.artifacts.put_file(str(parquet))
    version = stores.datasets.find_dataset_version_by_digest(name, digest)
    if version is None:
        version = stores.datasets.create_dataset_version(
            name,
            digest=digest,
            format="parquet",
            schema={f.name: str(f.type) for f in schema},
            stats={"num_rows": num_rows, "columns": {}},
            num_rows=num_rows,
            artifact_digest=digest,
            source=source,
            created_by_run=run_id,
        )
    stores.datasets.link_datasets([RunDataset(run_id, name, version.version, role)])
    return version
