"""Parquet and CSV files, and folders of them: finding, reading and combining them into one table.

A folder is read file by file in sorted path order, so its rows always come back in the same
order; ``key=value`` folder names (Hive partitions, as Spark writes them) become string
columns. Names starting with ``.`` or ``_`` (``_SUCCESS``, ``.ipynb_checkpoints``) are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipyard.datasets._tables import canonicalize
from shipyard.errors import IntegrityError, InvalidInputError

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
MANIFEST_KIND = "shipyard.dataset-folder"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def file_format(path: Path) -> str:
    """``parquet`` or ``csv`` by the file's suffix.

    Raises:
        InvalidInputError: the suffix is neither.
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInputError(
            f"data file {str(path)!r} is neither Parquet nor CSV; expected a name ending in .parquet, .pq or .csv",
            field="data",
        )
    return kind


def discover(folder: Path) -> tuple[str, list[tuple[str, Path]]]:
    """The one format of a folder's data files and the files, as (relative posix path, path), sorted."""
    files = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith((".", "_")) for part in relative.parts):
            files.append((relative.as_posix(), path))
    files.sort()
    if not files:
        raise InvalidInputError(f"folder {str(folder)!r} holds no Parquet or CSV files", field="data")
    unknown = [rel for rel, path in files if path.suffix.lower() not in SUFFIXES]
    if unknown:
        raise InvalidInputError(
            f"folder {str(folder)!r} holds {unknown[0]!r}, which is neither Parquet nor CSV; expected only "
            ".parquet, .pq or .csv files (names starting with '.' or '_' are skipped)",
            field="data",
        )
    formats = {rel: SUFFIXES[path.suffix.lower()] for rel, path in files}
    if len(set(formats.values())) > 1:
        csv = next(rel for rel, kind in formats.items() if kind == "csv")
        parquet = next(rel for rel, kind in formats.items() if kind == "parquet")
        raise InvalidInputError(
            f"folder {str(folder)!r} mixes Parquet ({parquet!r}) and CSV ({csv!r}) files; keep one format per dataset",
            field="data",
        )
    return formats[files[0][0]], files


def read_file(kind: str, source: str | pa.NativeFile, *, label: str) -> pa.Table:
    """One Parquet or CSV file (a local path or a buffer) as a canonical table."""
    try:
        table = pq.read_table(source) if kind == "parquet" else pacsv.read_csv(source)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(f"cannot read {label!r} as {kind}: {exc}", field="data") from exc
    return canonicalize(table)


def combine(kind: str, parts: list[tuple[str, pa.Table]], *, label: str) -> pa.Table:
    """The files of one folder as one table, in the order given, with Hive partition columns added.

    CSV types are guessed per file, so a column may be ``int64`` in one file and ``double`` in
    another; those are widened. Parquet files carry their types and must agree.
    """
    promote = "permissive" if kind == "csv" else "default"
    tables = [(rel, canonicalize(_with_partitions(table, rel))) for rel, table in parts]
    first_rel, first = tables[0]
    for rel, table in tables[1:]:
        try:
            pa.unify_schemas([first.schema, table.schema], promote_options=promote)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(
                f"in {label!r}, {rel!r} does not match the columns of {first_rel!r}: {exc}", field="data"
            ) from exc
    combined = pa.concat_tables([t for _, t in tables], promote_options=promote)
    # pandas metadata of one file describes that file's index, not the folder's.
    return canonicalize(combined.replace_schema_metadata(None))


def _with_partitions(table: pa.Table, relative: str) -> pa.Table:
    for part in relative.split("/")[:-1]:
        key, sep, value = part.partition("=")
        if sep and key and key not in table.column_names:
            column = (
                pa.nulls(table.num_rows, pa.large_string())
                if value == HIVE_NULL
                else pa.repeat(pa.scalar(value, pa.large_string()), table.num_rows)
            )
            table = table.append_column(key, column)
    return table


def manifest_bytes(kind: str, files: list[tuple[str, str, int]]) -> bytes:
    """The JSON manifest of a stored folder: its format and each file's path, digest and size."""
    document = {
        "kind": MANIFEST_KIND,
        "version": 1,
        "format": kind,
        "files": [{"path": path, "digest": digest, "size": size} for path, digest, size in files],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def parse_manifest(data: bytes, *, label: str) -> tuple[str, list[dict[str, Any]]]:
    """The format and the file entries of a manifest written by :func:`manifest_bytes`."""
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("kind") != MANIFEST_KIND:
        raise IntegrityError(f"the artifact of dataset {label} is not a dataset folder manifest")
    return str(document["format"]), list(document["files"])
