"""Where feature views read their rows: files, in-memory frames, SQL databases, DuckDB SQL.

Every source becomes a DuckDB view inside one connection, so the point-in-time join and
materialization are one engine's plan whatever the data is stored in; files are scanned
lazily (DuckDB streams Parquet), a SQL query is fetched in chunks as Arrow and copied chunk
by chunk into a DuckDB temp table (which spills to disk), never held whole in Python.

Example:
    >>> src = FileSource("data/events.parquet", timestamp_field="ts")
    >>> src.spec()["type"]
    'file'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_FORMATS = ("parquet", "csv")
_FETCH_ROWS = 50_000
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")


def quote(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Base of every source: the event-time column and the optional created-time tie-breaker."""

    timestamp_field: str = ""
    created_timestamp_field: str | None = None

    def register(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        """Make the source's rows a view named ``alias`` in ``con``."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """A JSON description, stored with the view's definition."""
        raise NotImplementedError

    def _times(self) -> dict[str, Any]:
        return {"timestamp_field": self.timestamp_field, "created_timestamp_field": self.created_timestamp_field}


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSource(Source):
    """Parquet or CSV: one file, a glob (``data/*.parquet``) or a folder (read recursively).

    ``file_format`` is inferred from the path's suffix, or from the files in a folder.
    """

    path: str
    file_format: str = ""

    def __init__(
        self,
        path: str | Path,
        *,
        timestamp_field: str = "",
        created_timestamp_field: str | None = None,
        file_format: str = "",
    ) -> None:
        if not isinstance(path, (str, Path)) or not str(path):
            raise InvalidInputError(f"FileSource path must be a file, glob or folder path, got {path!r}", field="path")
        text = str(path)
        # Absolute, so that the stored definition means the same files from any working directory.
        resolved = text if "://" in text else str(Path(text).expanduser().absolute())
        fmt = (file_format or _infer_format(resolved)).lower()
        if fmt not in _FORMATS:
            raise InvalidInputError(
                f"FileSource {text!r}: file_format must be one of {', '.join(_FORMATS)}, got {fmt!r}",
                field="file_format",
            )
        object.__setattr__(self, "path", resolved)
        object.__setattr__(self, "file_format", fmt)
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)

    def register(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        pattern = self.path
        if Path(pattern).is_dir():
            pattern = str(Path(pattern) / "**" / f"*.{self.file_format}")
        reader = "read_parquet" if self.file_format == "parquet" else "read_csv"
        options = "union_by_name = true" if self.file_format == "parquet" else "union_by_name = true, header = true"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {ident(alias)} AS SELECT * FROM {reader}({quote(pattern)}, {options})"
        )

    def spec(self) -> dict[str, Any]:
        return {"type": "file", "path": self.path, "file_format": self.file_format, **self._times()}


def _infer_format(path: str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in _FORMATS:
        return suffix
    if suffix == "pq":
        return "parquet"
    folder = Path(path)
    if folder.is_dir():
        for fmt in _FORMATS:
            if next(folder.rglob(f"*.{fmt}"), None) is not None:
                return fmt
    return "parquet"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFrameSource(Source):
    """An in-memory pandas DataFrame or Arrow table (tests, notebooks, pushed batches).

    Its definition stores a digest of the content: another process cannot read the rows,
    so it must pass the same frame to its own ``FeatureStore.apply``.
    """

    table: pa.Table = field(compare=False, repr=False)
    digest: str = ""

    def __init__(self, frame: Any, *, timestamp_field: str = "", created_timestamp_field: str | None = None) -> None:
        from shipyard.features._arrow import table_digest, to_arrow

        table = to_arrow(frame, what="DataFrameSource frame")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "digest", table_digest(table))
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)

    def register(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        con.register(alias, self.table)

    def spec(self) -> dict[str, Any]:
        return {"type": "frame", "digest": self.digest, "rows": self.table.num_rows, **self._times()}


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlSource(Source):
    """The rows of a SQL query against PostgreSQL (``postgresql://``) or SQLite (``sqlite:///``)."""

    query: str
    uri: str

    def __init__(
        self, query: str, *, uri: str, timestamp_field: str = "", created_timestamp_field: str | None = None
    ) -> None:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"SqlSource query must be a non-empty SQL string, got {query!r}", field="query")
        scheme = uri.split("://", 1)[0] if isinstance(uri, str) else ""
        if scheme not in ("sqlite", "postgresql", "postgresql+psycopg"):
            raise InvalidInputError(
                f"SqlSource uri must start with sqlite:/// or postgresql://, got scheme {scheme!r}", field="uri"
            )
        object.__setattr__(self, "query", query.strip().rstrip(";"))
        object.__setattr__(self, "uri", uri)
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)

    def register(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        """Copy the query's rows into a DuckDB temp table, one fetched chunk at a time.

        Python holds one chunk; DuckDB's buffer manager spills the table to its temp folder,
        so a result larger than memory still loads. A column's type is widened when a later
        chunk needs it (all nulls so far, or integers followed by fractions).
        """
        import duckdb

        chunk_view = f"{alias}__chunk"
        created = False
        try:
            for chunk in self.batches():
                con.register(chunk_view, chunk)
                if not created:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(alias)} AS SELECT * FROM {ident(chunk_view)}")
                    created = True
                else:
                    _widen(con, alias, chunk_view)
                    con.execute(f"INSERT INTO {ident(alias)} BY NAME SELECT * FROM {ident(chunk_view)}")
                con.unregister(chunk_view)
        except duckdb.Error as exc:
            raise InvalidInputError(
                f"SqlSource query returned rows DuckDB cannot hold in one column type: {exc}", field="query"
            ) from exc

    def batches(self) -> Iterator[pa.Table]:
        """The query's rows as Arrow tables of at most ``_FETCH_ROWS`` rows (server-side cursor)."""
        import pyarrow as pa
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.pool import NullPool

        from shipyard.store import redact_uri

        url = (
            "postgresql+psycopg://" + self.uri.removeprefix("postgresql://")
            if self.uri.startswith("postgresql://")
            else self.uri
        )
        engine = create_engine(url, poolclass=NullPool)
        empty = True
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=_FETCH_ROWS).execute(text(self.query))
                columns = list(result.keys())
                for part in result.partitions(_FETCH_ROWS):
                    empty = False
                    yield pa.table({c: [row[i] for row in part] for i, c in enumerate(columns)})
        except SQLAlchemyError as exc:
            raise InvalidInputError(
                f"SqlSource query on {redact_uri(self.uri)} failed: {getattr(exc, 'orig', exc)}", field="query"
            ) from exc
        finally:
            engine.dispose()
        if empty:
            yield pa.table({c: pa.array([], pa.null()) for c in columns})

    def spec(self) -> dict[str, Any]:
        return {"type": "sql", "query": self.query, "uri": self.uri, **self._times()}


def _widen(con: duckdb.DuckDBPyConnection, table: str, chunk: str) -> None:
    """Alter ``table``'s columns whose type cannot hold ``chunk``'s values: all-null ones, integers."""
    have = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {ident(table)})").fetchall())
    for name, new in con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {ident(chunk)})").fetchall():
        old = have.get(name)
        if old is None or new == old or new == '"NULL"':
            continue
        if old == '"NULL"' or (old in _INTEGERS and new in ("DOUBLE", "FLOAT")):
            con.execute(f"ALTER TABLE {ident(table)} ALTER COLUMN {ident(name)} TYPE {new}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DuckDBSource(Source):
    """A DuckDB SQL transformation over other sources, each visible to ``sql`` under its key.

    Example:
        >>> events = FileSource("events.parquet", timestamp_field="ts")
        >>> daily = DuckDBSource(
        ...     "SELECT user_id, date_trunc('day', ts) AS day, count(*) AS n FROM events GROUP BY ALL",
        ...     inputs={"events": events}, timestamp_field="day")
    """

    sql: str
    inputs: Mapping[str, Source] = field(default_factory=dict)

    def __init__(
        self,
        sql: str,
        *,
        inputs: Mapping[str, Source],
        timestamp_field: str = "",
        created_timestamp_field: str | None = None,
    ) -> None:
        from shipyard.features.models import check_name

        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInputError(f"DuckDBSource sql must be a non-empty query, got {sql!r}", field="sql")
        if not isinstance(inputs, Mapping) or not inputs:
            raise InvalidInputError("DuckDBSource inputs must map a table name to a source", field="inputs")
        for name, source in inputs.items():
            check_name("DuckDBSource input", name, "inputs")
            if not isinstance(source, Source):
                raise InvalidInputError(f"DuckDBSource input {name!r} must be a source, got {source!r}", field="inputs")
        object.__setattr__(self, "sql", sql.strip().rstrip(";"))
        object.__setattr__(self, "inputs", dict(inputs))
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)

    def register(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        ctes = []
        for name, source in self.inputs.items():
            inner = f"{alias}__{name}"
            source.register(con, inner)
            ctes.append(f"{ident(name)} AS (SELECT * FROM {ident(inner)})")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(alias)} AS WITH {', '.join(ctes)} SELECT * FROM ({self.sql})")

    def spec(self) -> dict[str, Any]:
        inputs = {name: source.spec() for name, source in self.inputs.items()}
        return {"type": "duckdb", "sql": self.sql, "inputs": inputs, **self._times()}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSource(Source):
    """A source rebuilt from a stored definition whose rows only another process had (a frame)."""

    stored: Mapping[str, Any] = field(default_factory=dict)

    def register(self, con: duckdb.DuckDBPyConnection, alias: str) -> None:
        raise InvalidInputError(
            f"this feature view reads an in-memory frame (digest {self.stored.get('digest', '?')[:12]}) "
            "that only the process that applied it holds; apply it with the frame in this process",
            field="source",
        )

    def spec(self) -> dict[str, Any]:
        return dict(self.stored)


def source_from_spec(spec: Mapping[str, Any]) -> Source:
    """The source a stored :meth:`Source.spec` describes."""
    times = {"timestamp_field": spec["timestamp_field"], "created_timestamp_field": spec["created_timestamp_field"]}
    kind = spec["type"]
    if kind == "file":
        return FileSource(spec["path"], file_format=spec["file_format"], **times)
    if kind == "sql":
        return SqlSource(spec["query"], uri=spec["uri"], **times)
    if kind == "duckdb":
        inputs = {name: source_from_spec(inner) for name, inner in spec["inputs"].items()}
        return DuckDBSource(spec["sql"], inputs=inputs, **times)
    return StoredSource(stored=dict(spec), **times)


def spec_digest(spec: Mapping[str, Any]) -> str:
    """The sha256 of a spec's canonical JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
