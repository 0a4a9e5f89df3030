"""SqlSource streams its rows in chunks; materialization writes what push writes, of every type."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from shipyard.config import Settings
from shipyard.features import Entity, FeatureStore, FeatureView, Field, SqlSource, sources
from tests.features.conftest import EVENTS, activity, ts, write_postgres
from tests.features.test_historical import CASES, _same, entity_frame


def _store(settings: Settings, tmp_path: Path) -> FeatureStore:
    from shipyard.client import Client

    return FeatureStore(online_store=f"sqlite:///{tmp_path / 'online.db'}", client=Client(settings=settings))


def _spy_chunks(monkeypatch: pytest.MonkeyPatch, rows: int) -> list[int]:
    """Fetch ``rows`` rows at a time and record the size of every chunk SqlSource yields."""
    monkeypatch.setattr(sources, "_FETCH_ROWS", rows)
    sizes: list[int] = []
    batches = SqlSource.batches

    def spy(self: SqlSource):  # type: ignore[no-untyped-def]
        for chunk in batches(self):
            sizes.append(chunk.num_rows)
            yield chunk

    monkeypatch.setattr(SqlSource, "batches", spy)
    return sizes


@pytest.mark.postgres
def test_postgres_source_streams_in_chunks_and_stays_point_in_time_correct(
    postgres_uri: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_postgres(postgres_uri, EVENTS, "events")
    sizes = _spy_chunks(monkeypatch, 2)
    store = _store(settings, tmp_path)
    store.apply([activity(SqlSource("SELECT * FROM events", uri=postgres_uri, timestamp_field="ts"))])

    frame = store.get_historical_features(entity_frame(), ["activity:clicks", "activity:sessions"])

    assert sizes == [2, 2, 2], "six rows must arrive as three chunks of two, never as one result"
    for (_, _, clicks, sessions, why), got_c, got_s in zip(CASES, frame["clicks"], frame["sessions"], strict=True):
        assert _same(got_c, clicks), why
        assert _same(got_s, sessions), why
    store.materialize(end=ts(20))
    online = store.get_online_features({"user_id": [1, 2, 3]}, ["activity:clicks"])
    assert online.statuses["clicks"][2] == "missing"
    assert online.values["user_id"] == [1, 2, 3]


def test_a_later_chunk_widens_a_column_instead_of_failing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite types values, not columns: the first chunk has only nulls and integers.
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (user_id INTEGER, ts TEXT, score REAL, note TEXT)")
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            [(1, "2026-01-01 00:00:00", 1, None), (2, "2026-01-01 00:00:00", 2, None), (3, "2026-01-01", 2.5, "x")],
        )
    sizes = _spy_chunks(monkeypatch, 2)
    user = Entity("user", join_keys=["user_id"])
    source = SqlSource("SELECT * FROM events", uri=f"sqlite:///{db}", timestamp_field="ts")
    view = FeatureView(
        "scores", entities=[user], schema=[Field("score", "float"), Field("note", "string")], source=source
    )
    store = _store(settings, tmp_path)
    store.apply([user, view])

    entity = pd.DataFrame({"user_id": [1, 2, 3], "event_timestamp": [ts(2)] * 3})
    frame = store.get_historical_features(entity, ["scores:score", "scores:note"], to="arrow")

    assert sizes == [2, 1]
    assert frame.column("score").to_pylist() == [1.0, 2.0, 2.5]
    assert frame.column("note").to_pylist() == [None, None, "x"]


def test_materialized_payloads_read_back_as_offline_values_of_every_type(settings: Settings, tmp_path: Path) -> None:
    # DuckDB encodes materialized rows; push encodes in Python: a read must decode both alike.
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    rows = pa.table(
        {
            "user_id": [1, 2, 3],
            "ts": pa.array([ts(1), ts(1), ts(1)], pa.timestamp("us")),
            "ratio": [0.1, 1 / 3, float("nan")],
            "count": [2**53 + 1, -1, 0],
            "name": ['é "quoted"\n', "\x01", None],
            "flag": [True, False, None],
            "seen": pa.array([when, None, when], pa.timestamp("us", tz="UTC")),
        }
    )
    path = tmp_path / "rows.parquet"
    import pyarrow.parquet as pq

    pq.write_table(rows, path)
    user = Entity("user", join_keys=["user_id"])
    fields = [Field("ratio", "float"), Field("count", "int"), Field("name", "string"), Field("flag", "bool")]
    fields.append(Field("seen", "timestamp"))
    from shipyard.features import FileSource

    view = FeatureView("kinds", entities=[user], schema=fields, source=FileSource(path, timestamp_field="ts"))
    store = _store(settings, tmp_path)
    store.apply([user, view])
    refs = [f"kinds:{f.name}" for f in fields]
    store.materialize(end=ts(2))
    materialized = store.get_online_features({"user_id": [1, 2, 3]}, refs).to_dict()
    store.push("kinds", rows)  # the same rows again, encoded by push: the same event time wins by created time
    pushed = store.get_online_features({"user_id": [1, 2, 3]}, refs).to_dict()

    for got in (materialized, pushed):
        assert got["ratio"][:2] == [0.1, 1 / 3]
        assert got["ratio"][2] != got["ratio"][2]  # NaN survives the round trip
        assert got["count"] == [2**53 + 1, -1, 0]
        assert got["name"] == ['é "quoted"\n', "\x01", None]
        assert got["flag"] == [True, False, None]
        assert got["seen"] == [when, None, when]
