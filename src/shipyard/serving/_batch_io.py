"""What batch prediction reads and writes: Parquet/CSV files, globs, folders and SQL queries in, one file or folder out.

Reading streams Arrow record batches (a ``pyarrow.dataset`` scanner for files, a
server-side cursor for SQL), so at most ``batch_size`` rows of each batch are decoded
at once whatever the input's size. Writing goes to a hidden temporary name beside the
output and is renamed into place only when every row was written: a failed or
interrupted job leaves no output at all, never a half-written one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

_FILE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
SQL_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """The rows of a SQL query on PostgreSQL (``postgresql://``) or SQLite (``sqlite:///``), read with a cursor.

    Example:
        >>> SqlQuery("SELECT * FROM customers", uri="sqlite:///shop.db").label
        'sql: SELECT * FROM customers'
    """

    query: str
    uri: str

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidInputError(f"the SQL query must be a non-empty string, got {self.query!r}", field="query")
        scheme = self.uri.split("://", 1)[0] if isinstance(self.uri, str) else ""
        if scheme not in SQL_SCHEMES:
            raise InvalidInputError(
                f"the database URI must start with sqlite:/// or postgresql://, got {self.uri!r}", field="db"
            )

    @property
    def label(self) -> str:
        """How the input is named in messages and lineage."""
        return f"sql: {self.query.strip()}"


@dataclass(slots=True)
class Source:
    """An opened input: its Arrow schema, the files behind it (none for SQL) and a way to stream it."""

    label: str
    schema: pa.Schema
    files: list[str] = field(default_factory=list)
    format: str = "parquet"
    dataset: pads.Dataset | None = None
    query: SqlQuery | None = None
    _first: pa.RecordBatch | None = None
    _rest: Iterator[pa.RecordBatch] | None = None
    _close: Callable[[], None] | None = None

    def close(self) -> None:
        """Release a SQL source's connection (files hold nothing open between reads)."""
        if self._close is not None:
            self._close()
            self._close = None

    @property
    def single_parquet(self) -> str | None:
        """The path when the input is exactly one Parquet file (stored as it is for lineage)."""
        return self.files[0] if self.format == "parquet" and len(self.files) == 1 else None

    def count_rows(self) -> int | None:
        """The number of rows when it is known without reading the data (Parquet metadata), else ``None``."""
        if self.dataset is None or self.format != "parquet":
            return None
        return int(self.dataset.count_rows())

    def batches(self, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        """The rows, ``columns`` only, in batches of at most ``batch_size`` rows."""
        if self.dataset is not None:
            target = pa_schema_of(self.schema, columns)
            for file in self.files:
                yield from read_file(file, self.format, target, batch_size)
            return
        assert self._first is not None, "a SQL source is read once"
        assert self._rest is not None
        first, rest, self._first, self._rest = self._first, self._rest, None, None
        for batch in _chain(first, rest):
            yield batch.select(columns)


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def open_source(source: str | os.PathLike[str] | SqlQuery, *, batch_size: int) -> Source:
    """Open a Parquet or CSV file, a glob of them, a folder of them, or a :class:`SqlQuery`, reading no data yet.

    Raises:
        InvalidInputError: nothing matches, formats are mixed or unknown, or the files cannot be read.
    """
    if isinstance(source, SqlQuery):
        return _open_sql(source, batch_size)
    text = os.fspath(source)
    if not text.strip():
        raise InvalidInputError("the input must be a Parquet/CSV file, a glob or a folder, got ''", field="input")
    files = _input_files(text)
    kinds = {_FILE_FORMATS.get(Path(f).suffix.lower()) for f in files}
    if None in kinds:
        odd = next(f for f in files if Path(f).suffix.lower() not in _FILE_FORMATS)
        raise InvalidInputError(
            f"input file {odd!r} is neither Parquet nor CSV; expected names ending in .parquet, .pq or .csv",
            field="input",
        )
    if len(kinds) > 1:
        raise InvalidInputError(f"input {text!r} mixes Parquet and CSV files; use one format", field="input")
    kind = str(kinds.pop())
    import pyarrow as pa
    import pyarrow.dataset as pads

    try:
        dataset = pads.dataset(files, format=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(f"cannot read input {text!r} as {kind}: {exc}", field="input") from exc
    return Source(text, dataset.schema, files, kind, dataset)


def pa_schema_of(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    """``schema`` narrowed to ``columns``, in that order."""
    import pyarrow as pa

    return pa.schema([schema.field(name) for name in columns])


def read_file(
    file: str, kind: str, schema: pa.Schema, batch_size: int, *, row_groups: Iterable[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """One file's ``schema`` columns in batches of at most ``batch_size`` rows, holding one row group at a time.

    Parquet is read row group by row group without ``pre_buffer``: pyarrow's dataset
    scanner (and ``pre_buffer``) read ahead of a slow consumer, so its memory grew with
    the file (0.5 GB more at 4M rows than at 2M behind a model); this stays at one row
    group whatever the file's size. CSV is read by Arrow's streaming reader with the
    types of the input's schema. Batches of a file whose types differ are cast to it.

    Raises:
        InvalidInputError: the file lacks a column or holds values of another type.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if kind == "parquet":
            parquet = pq.ParquetFile(file, pre_buffer=False)
            groups = range(parquet.num_row_groups) if row_groups is None else row_groups
            batches: Iterable[pa.RecordBatch] = (
                batch
                for group in groups
                for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[group], columns=schema.names)
            )
        else:
            convert = pacsv.ConvertOptions(column_types=schema, include_columns=schema.names)
            batches = (
                piece for block in pacsv.open_csv(file, convert_options=convert) for piece in _slices(block, batch_size)
            )
        for batch in batches:
            if batch.num_rows:
                yield batch if batch.schema == schema else batch.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError, OSError) as exc:
        raise InvalidInputError(
            f"cannot read {file!r} with the input's columns and types: {exc}", field="input"
        ) from exc


def _slices(batch: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)


def _input_files(text: str) -> list[str]:
    path = Path(text)
    if any(c in text for c in "*?["):
        files = sorted(f for f in glob.glob(text, recursive=True) if Path(f).is_file())
        if not files:
            raise InvalidInputError(f"input glob {text!r} matches no files", field="input")
        return files
    if path.is_dir():
        files = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not files:
            raise InvalidInputError(f"input folder {text!r} holds no Parquet or CSV files", field="input")
        return files
    if not path.is_file():
        raise InvalidInputError(f"input {text!r} does not exist", field="input")
    return [str(path)]


def _open_sql(query: SqlQuery, batch_size: int) -> Source:
    """Run the query and read its first batch: its types are the schema the rest must keep."""
    import pyarrow as pa
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from shipyard.store import redact_uri

    url = "postgresql+psycopg://" + query.uri.removeprefix("postgresql://")
    engine = create_engine(url if query.uri.startswith("postgresql://") else query.uri, poolclass=NullPool)
    stack = contextlib.ExitStack()
    stack.callback(engine.dispose)
    try:
        conn = stack.enter_context(engine.connect())
        result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(text(query.query))
        names = list(result.keys())
        parts = result.partitions(batch_size)
        first_rows = next(parts, None)
    except SQLAlchemyError as exc:
        stack.close()
        raise InvalidInputError(
            f"the query on {redact_uri(query.uri)} failed: {getattr(exc, 'orig', exc)}", field="query"
        ) from exc
    if not first_rows:
        stack.close()
        raise InvalidInputError(f"the query on {redact_uri(query.uri)} returned no rows", field="query")
    first = pa.RecordBatch.from_pydict({c: [row[i] for row in first_rows] for i, c in enumerate(names)})

    def rest() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                rows = next(parts, None)
                if not rows:
                    return
                columns = {c: [row[i] for row in rows] for i, c in enumerate(names)}
                batch = pa.RecordBatch.from_pydict(columns, schema=first.schema)
            except SQLAlchemyError as exc:
                message = f"reading the query's rows from {redact_uri(query.uri)} failed: {getattr(exc, 'orig', exc)}"
                raise InvalidInputError(message, field="query") from exc
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InvalidInputError(
                    f"the query's rows change type after row {len(first_rows)}: {exc}", field="query"
                ) from exc
            yield batch

    return Source(query.label, first.schema, [], "sql", None, query, first, rest(), stack.close)


def output_format(path: Path) -> str:
    """``parquet``, ``csv``, or ``folder`` (of Parquet parts) for an output path without one of those suffixes."""
    suffix = path.suffix.lower()
    if suffix in _FILE_FORMATS:
        return _FILE_FORMATS[suffix]
    if suffix:
        raise InvalidInputError(
            f"output {str(path)!r} must end in .parquet or .csv, or name a folder (no suffix) for Parquet parts",
            field="output",
        )
    return "folder"


def check_output(path: Path, *, overwrite: bool) -> None:
    """Refuse an output that exists (unless ``overwrite``) or whose parent folder does not.

    Raises:
        InvalidInputError: naming the path and the way out.
    """
    if not path.parent.is_dir():
        raise InvalidInputError(f"the folder of output {str(path)!r} does not exist", field="output")
    if path.exists() and not overwrite:
        raise InvalidInputError(f"output {str(path)!r} exists; pass --overwrite to replace it", field="output")


class TempOutput:
    """A hidden name beside the output, renamed into place by :meth:`commit`, removed by :meth:`discard`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = output_format(path)
        self.temp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
        if self.kind == "folder":
            self.temp.mkdir()

    def part(self, index: int) -> Path:
        """The path of part ``index`` in a folder output."""
        return self.temp / f"part-{index:05d}.parquet"

    def commit(self) -> None:
        """Put the output in place: one rename (a folder replacing an old one moves the old one aside first)."""
        if self.kind != "folder" or not self.path.exists():
            os.replace(self.temp, self.path)
            return
        old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(self.path, old)
        os.replace(self.temp, self.path)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Remove whatever was written."""
        if self.temp.is_dir():
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()


class BatchWriter:
    """Record batches into one Parquet or CSV file, all with the first batch's schema."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.rows = 0
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        """Append ``batch``; later batches are cast to the first one's column types."""
        if self._writer is None:
            self._schema = batch.schema
            self._writer = _open_writer(self.path, self.kind, batch.schema)
        elif batch.schema != self._schema:
            batch = batch.cast(self._schema)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        """Finish the file (a file with no batches is not created)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _open_writer(path: Path, kind: str, schema: pa.Schema) -> Any:
    if kind == "csv":
        import pyarrow.csv as pacsv

        return pacsv.CSVWriter(str(path), schema)
    import pyarrow.parquet as pq

    return pq.ParquetWriter(str(path), schema)


def scratch_folder(near: Path) -> Path:
    """A private temporary folder beside ``near`` (same filesystem, so renames stay renames)."""
    return Path(tempfile.mkdtemp(prefix=f".{near.name}.scratch-", dir=near.parent))
