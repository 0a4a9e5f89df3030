"""Ingesting a Redis Stream into the online store: typed rows, dead letters, resume after a crash."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.features import FeatureStore
from shipyard.features.stream import ingest_stream, parse_stream_uri
from shipyard.testing import port_open
from tests.conftest import _missing
from tests.features.conftest import EVENTS, activity, make_source

pytestmark = pytest.mark.redis


@pytest.fixture
def stream() -> Iterator[str]:
    """A fresh stream name in Redis on 127.0.0.1:6379, deleted afterwards."""
    if not port_open("127.0.0.1", 6379):
        _missing("Redis is not listening on 127.0.0.1:6379")
    import redis

    name = "test-stream-" + uuid.uuid4().hex[:12]
    yield name
    client = redis.Redis()
    client.delete(name, f"{name}:dead")
    client.close()


@pytest.fixture
def store(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FeatureStore]:
    from shipyard.client import Client

    feature_store = FeatureStore(online_store=f"sqlite:///{tmp_path / 'online.db'}", client=Client(settings=settings))
    feature_store.apply([activity(make_source("parquet", EVENTS, tmp_path, request), ttl=None)])
    yield feature_store
    feature_store.close()


def _add(name: str, rows: list[dict[str, str]]) -> None:
    import redis

    client = redis.Redis()
    for row in rows:
        client.xadd(name, row)
    client.close()


def _row(user: int, day: int, clicks: str) -> dict[str, str]:
    return {"user_id": str(user), "ts": f"2026-02-{day:02d}T00:00:00", "clicks": clicks, "sessions": "5"}


def test_entries_are_typed_pushed_and_bad_ones_dead_lettered(store: FeatureStore, stream: str) -> None:
    import redis

    _add(stream, [_row(1, 1, "1.5"), _row(2, 1, "oops"), _row(1, 2, "2.5"), {"user_id": "3"}])
    stats = ingest_stream(store, f"redis://127.0.0.1:6379/{stream}", view="activity", max_messages=4)
    assert (stats.pushed, stats.dead) == (2, 2)
    got = store.get_online_features({"user_id": [1, 2]}, ["activity:clicks", "activity:sessions"])
    assert got.to_dict()["clicks"] == [2.5, None]  # the newer of user 1's two entries
    assert got.to_dict()["sessions"] == [5, None]
    dead = redis.Redis(decode_responses=True).xrange(f"{stream}:dead")
    assert [entry["_error"] for _, entry in dead] == [
        "field 'clicks': could not convert string to float: 'oops'",
        "entry has no field 'ts'",
    ]


def test_a_restarted_consumer_rereads_what_it_had_not_acknowledged(store: FeatureStore, stream: str) -> None:
    import redis

    uri = f"redis://127.0.0.1:6379/0/{stream}"
    _add(stream, [_row(1, 1, "1.0"), _row(2, 1, "2.0")])
    ingest_stream(store, uri, view="activity", consumer="c1", max_messages=0)  # creates the group only
    client = redis.Redis(decode_responses=True)
    read = client.xreadgroup("shipyard-features", "c1", {stream: ">"}, count=2)  # then "crashes" before acking
    assert len(read[0][1]) == 2
    _add(stream, [_row(3, 1, "3.0")])

    stats = ingest_stream(store, uri, view="activity", consumer="c1", max_messages=3)
    assert stats.pushed == 3
    assert store.get_online_features({"user_id": [1, 2, 3]}, ["activity:clicks"]).to_dict()["clicks"] == [1.0, 2.0, 3.0]
    assert client.xpending(stream, "shipyard-features")["pending"] == 0


def test_stream_uris_are_checked() -> None:
    assert parse_stream_uri("redis://h:6380/events") == ("redis://h:6380/0", "events")
    assert parse_stream_uri("redis://h/2/events") == ("redis://h/2", "events")
    with pytest.raises(InvalidInputError, match="redis://HOST"):
        parse_stream_uri("kafka://h/events")
