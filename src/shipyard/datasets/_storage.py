"""How a dataset's bytes reach the artifact store and come back as a table.

Formats (the ``format`` recorded on a version):

- ``parquet``: one Parquet blob. In-memory tables and CSV files are written as Parquet;
  a Parquet file is stored as it is.
- ``parquet-folder`` / ``csv-folder``: every file stored as it is, plus a JSON manifest
  blob listing them; the version's ``artifact_digest`` is the manifest's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.datasets import _files
from shipyard.datasets._tables import canonicalize, to_arrow
from shipyard.errors import InvalidInputError
from shipyard.store import ArtifactStore
from shipyard.store.entities import DatasetVersion

FOLDER_SUFFIX = "-folder"


@dataclass(frozen=True, slots=True)
class Prepared:
    """Data ready to log: its canonical table, the format it will be stored in, and how to store it."""

    table: pa.Table
    format: str
    source: str | None
    write: Callable[[ArtifactStore], str]


def prepare(data: object) -> Prepared:
    """Read ``data`` (a table or a path) into a canonical table, without storing anything yet."""
    if isinstance(data, str | os.PathLike):
        return _prepare_path(Path(data))
    table = canonicalize(to_arrow(data)[0])
    return Prepared(table, "parquet", None, lambda artifacts: write_parquet(table, artifacts))


def _prepare_path(path: Path) -> Prepared:
    if not path.exists():
        raise InvalidInputError(f"data path {str(path)!r} does not exist", field="data")
    source = str(path.resolve())
    if path.is_dir():
        kind, files = _files.discover(path)
        parts = [(rel, _files.read_file(kind, str(local), label=rel)) for rel, local in files]
        table = _files.combine(kind, parts, label=str(path))
        return Prepared(table, kind + FOLDER_SUFFIX, source, lambda artifacts: _write_folder(kind, files, artifacts))
    kind = _files.file_format(path)
    table = _files.read_file(kind, str(path), label=str(path))
    if kind == "parquet":
        return Prepared(table, "parquet", source, lambda artifacts: artifacts.put_file(str(path))[0])
    return Prepared(table, "parquet", source, lambda artifacts: write_parquet(table, artifacts))


def write_parquet(table: pa.Table, artifacts: ArtifactStore) -> str:
    """Store ``table`` as one Parquet blob; returns its digest."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return artifacts.put_bytes(sink.getvalue().to_pybytes())[0]


def _write_folder(kind: str, files: list[tuple[str, Path]], artifacts: ArtifactStore) -> str:
    entries = []
    for rel, local in files:
        digest, size = artifacts.put_file(str(local))
        entries.append((rel, digest, size))
    # The manifest goes last: a crash before it leaves only unreferenced blobs for gc.
    return artifacts.put_bytes(_files.manifest_bytes(kind, entries))[0]


def nested_digests(version: DatasetVersion, artifacts: ArtifactStore) -> list[str]:
    """The digests of the files a folder version's manifest lists; none for a single blob."""
    if not version.format.endswith(FOLDER_SUFFIX):
        return []
    _, entries = _files.parse_manifest(artifacts.get_bytes(version.artifact_digest), label=version.ref)
    return [str(e["digest"]) for e in entries]


def read_table(version: DatasetVersion, artifacts: ArtifactStore) -> pa.Table:
    """The table a version stored, every blob verified against its digest on the way."""
    blob = artifacts.get_bytes(version.artifact_digest)
    if version.format == "parquet":
        return _files.read_file("parquet", pa.BufferReader(blob), label=version.ref)
    if version.format.endswith(FOLDER_SUFFIX):
        kind, entries = _files.parse_manifest(blob, label=version.ref)
        parts = [
            (e["path"], _files.read_file(kind, pa.BufferReader(artifacts.get_bytes(e["digest"])), label=e["path"]))
            for e in entries
        ]
        return _files.combine(kind, parts, label=version.ref)
    raise InvalidInputError(
        f"dataset {version.ref} has format {version.format!r}, which this shipyard cannot read; "
        "upgrade shipyard to load it",
        field="format",
    )
