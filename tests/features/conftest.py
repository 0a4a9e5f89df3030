"""Fixtures of the feature-store tests: a hand-checked event history in every kind of source."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.features import (
    DataFrameSource,
    DuckDBSource,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Source,
    SqlSource,
)
from shipyard.testing import ServiceMissing, port_open, postgres_schema
from tests.conftest import _missing


def ts(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    """A naive UTC time in January 2026."""
    return dt.datetime(2026, 1, day, hour, minute, second)


# user 1 has three rows at the same event time: the latest created (30.0) must win.
EVENTS = pd.DataFrame(
    {
        "user_id": [1, 1, 1, 2, 4, 1],
        "ts": [ts(1), ts(3), ts(3), ts(2), ts(10), ts(3)],
        "created": [ts(1), ts(3), ts(3, 5), ts(2), ts(10), ts(3, 2)],
        "clicks": [1.0, 3.0, 30.0, 2.0, 4.0, 20.0],
        "sessions": [10, 11, 12, 20, 40, 13],
    }
)

USER = Entity("user", join_keys=["user_id"], description="a registered user")


def activity(source: Source, ttl: str | None = "2d") -> FeatureView:
    """The view under test: two features of a user, ttl two days."""
    return FeatureView(
        "activity",
        entities=[USER],
        schema=[Field("clicks", "float"), Field("sessions", "int")],
        source=source,
        ttl=ttl,
        created_timestamp_field="created",
        owner="growth",
        description="user activity",
    )


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL schema in db ``test``."""
    try:
        with postgres_schema() as uri:
            yield uri
    except ServiceMissing as exc:
        _missing(str(exc))


def write_postgres(uri: str, frame: pd.DataFrame, table: str) -> None:
    """``frame`` as a table in the PostgreSQL schema ``uri`` points at."""
    from sqlalchemy import create_engine

    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        frame.to_sql(table, conn, index=False)
    engine.dispose()


def make_source(kind: str, frame: pd.DataFrame, folder: Path, request: pytest.FixtureRequest) -> Source:
    """``frame`` stored as a ``kind`` source."""
    if kind == "parquet":
        frame.to_parquet(folder / "events.parquet")
        return FileSource(folder / "events.parquet", timestamp_field="ts")
    if kind == "parquet-folder":
        (folder / "events").mkdir()
        half = len(frame) // 2
        frame.iloc[:half].to_parquet(folder / "events" / "a.parquet")
        frame.iloc[half:].to_parquet(folder / "events" / "b.parquet")
        return FileSource(folder / "events", timestamp_field="ts")
    if kind == "csv":
        frame.to_csv(folder / "events.csv", index=False)
        return FileSource(str(folder / "*.csv"), timestamp_field="ts")
    if kind == "frame":
        return DataFrameSource(frame, timestamp_field="ts")
    if kind == "duckdb":
        frame.to_parquet(folder / "raw.parquet")
        raw = FileSource(folder / "raw.parquet", timestamp_field="ts")
        sql = "SELECT user_id, ts, created, clicks * 1.0 AS clicks, sessions FROM raw WHERE user_id IS NOT NULL"
        return DuckDBSource(sql, inputs={"raw": raw}, timestamp_field="ts")
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(folder / "src.db") as conn:
            frame.to_sql("events", conn, index=False)
        return SqlSource(
            "SELECT user_id, CAST(ts AS TEXT) AS ts, created, clicks, sessions FROM events",
            uri=f"sqlite:///{folder / 'src.db'}",
            timestamp_field="ts",
        )
    uri = request.getfixturevalue("postgres_uri")
    write_postgres(uri, frame, "events")
    return SqlSource("SELECT * FROM events", uri=uri, timestamp_field="ts")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty online store: a SQLite file, or a fresh key prefix in Redis on 127.0.0.1:6379."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'online.db'}"
        return
    if not port_open("127.0.0.1", 6379):
        _missing("Redis is not listening on 127.0.0.1:6379")
    prefix = "test-" + uuid.uuid4().hex[:12]
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    import redis

    client = redis.Redis()
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def feature_store(settings: Settings, online_uri: str) -> Iterator[FeatureStore]:
    """A feature store over the test's metadata store and online store."""
    from shipyard.client import Client

    store = FeatureStore(online_store=online_uri, client=Client(settings=settings))
    yield store
    store.close()
