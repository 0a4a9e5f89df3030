"""Materialization, online reads and pushes, on the SQLite and the Redis online stores."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import InvalidInputError
from shipyard.features import FeatureStore, FeatureView, Field, on_demand
from tests.features.conftest import EVENTS, activity, make_source, ts


@on_demand(sources=[], request=[Field("amount", "float")], schema=[Field("amount_x2", "float")])
def doubled(df: pd.DataFrame) -> pd.DataFrame:
    """Twice the amount sent with the request."""
    return pd.DataFrame({"amount_x2": df["amount"] * 2})


def _ratio(view: FeatureView) -> object:
    @on_demand(sources=[view], request=[Field("amount", "float")], schema=[Field("clicks_per_amount", "float")])
    def clicks_per_amount(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"clicks_per_amount": df["clicks"] / df["amount"]})

    return clicks_per_amount


def test_materialized_values_are_the_latest_per_entity_with_statuses(
    feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    view = activity(make_source("parquet", EVENTS, tmp_path, request), ttl=None)
    feature_store.apply([view])
    [record] = feature_store.materialize(end=ts(5))
    assert (record.view, record.rows) == ("activity", 2)  # user 4's only value is after the end

    got = feature_store.get_online_features({"user_id": [1, 2, 3, 4]}, ["activity:clicks", "activity:sessions"])
    assert got.to_dict() == {
        "user_id": [1, 2, 3, 4],
        "clicks": [30.0, 2.0, None, None],  # the tie at 3 Jan goes to the latest created row
        "sessions": [12, 20, None, None],
    }
    assert got.statuses["clicks"] == ["present", "present", "missing", "missing"]


def test_materialization_is_idempotent_and_never_goes_back(
    feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    view = activity(make_source("parquet", EVENTS, tmp_path, request), ttl=None)
    feature_store.apply([view])
    feature_store.materialize(end=ts(20))
    feature_store.materialize(end=ts(20))  # a re-run changes nothing
    assert feature_store.get_online_features({"user_id": [1, 4]}, ["activity:clicks"]).to_dict()["clicks"] == [
        30.0,
        4.0,
    ]

    fresh = pd.DataFrame({"user_id": [1], "ts": [ts(21)], "clicks": [99.0], "sessions": [1]})
    assert feature_store.push("activity", fresh) == 1
    feature_store.materialize(end=ts(20))  # older source values do not overwrite the pushed one
    incremental = feature_store.materialize_incremental(end=ts(25))
    assert incremental[0].start_time == ts(20).replace(tzinfo=dt.UTC).timestamp()
    assert feature_store.get_online_features({"user_id": [1]}, ["activity:clicks"]).to_dict()["clicks"] == [99.0]


def test_values_older_than_ttl_are_expired_not_errors(
    feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    events = pd.DataFrame(
        {
            "user_id": [1, 2],
            "ts": [now - dt.timedelta(hours=1), now - dt.timedelta(days=3)],
            "created": [now, now],
            "clicks": [1.5, 2.5],
            "sessions": [1, 2],
        }
    )
    feature_store.apply([activity(make_source("frame", events, tmp_path, request), ttl="2d")])
    feature_store.materialize(end="now")
    got = feature_store.get_online_features({"user_id": [1, 2, 7]}, ["activity:clicks"])
    assert got.to_dict()["clicks"] == [1.5, None, None]
    assert got.statuses["clicks"] == ["present", "expired", "missing"]


def test_push_with_a_type_mismatch_writes_nothing(
    feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    feature_store.apply([activity(make_source("parquet", EVENTS, tmp_path, request))])
    bad = pd.DataFrame({"user_id": [8, 9], "ts": [ts(1), ts(2)], "clicks": ["many", "few"], "sessions": [1, 2]})
    with pytest.raises(
        InvalidInputError, match=r"column 'clicks' has type (large_)?string, expected float; nothing was written"
    ):
        feature_store.push("activity", bad)
    missing = pd.DataFrame({"user_id": [8], "clicks": [1.0]})
    with pytest.raises(InvalidInputError, match=r"column 'ts' is missing; column 'sessions' is missing"):
        feature_store.push("activity", missing)
    got = feature_store.get_online_features({"user_id": [8, 9]}, ["activity:sessions"])
    assert got.statuses["sessions"] == ["missing", "missing"]


@pytest.mark.parametrize("source_kind", ["parquet", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_train_serve_consistency_on_random_entities(
    source_kind: str, feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(7)
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    rows = []
    for _ in range(400):
        # Half-hour offsets: no value sits exactly on the ttl boundary while the test runs.
        at = end - dt.timedelta(hours=rng.randint(-24, 240), minutes=30)
        rows.append(
            (rng.randint(1, 60), at, at + dt.timedelta(seconds=rng.randint(0, 3)), rng.random(), rng.randint(0, 9))
        )
    events = pd.DataFrame(rows, columns=["user_id", "ts", "created", "clicks", "sessions"])
    view = activity(make_source(source_kind, events, tmp_path, request), ttl="7d")
    ratio = _ratio(view)
    feature_store.apply([view, ratio, doubled])
    feature_store.materialize(end=end)

    users = rng.sample(range(1, 70), 40)  # some never seen
    amounts = [rng.uniform(0.5, 3.0) for _ in users]
    refs = ["activity:clicks", "activity:sessions", "clicks_per_amount:clicks_per_amount", "doubled:amount_x2"]
    entity_df = pd.DataFrame({"user_id": users, "event_timestamp": [end] * len(users), "amount": amounts})
    offline = feature_store.get_historical_features(entity_df, refs, to="arrow").to_pydict()
    online = feature_store.get_online_features({"user_id": users, "amount": amounts}, refs).to_dict()
    for name in ["clicks", "sessions", "clicks_per_amount", "amount_x2"]:
        assert online[name] == offline[name], name
    assert any(v is None for v in online["clicks"])
    assert any(v is not None for v in online["clicks"])


def test_a_forced_schema_change_drops_online_values_and_progress_is_reported(
    feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    view = activity(make_source("parquet", EVENTS, tmp_path, request), ttl=None)
    feature_store.apply([view])
    seen: list[tuple[str, int, int]] = []
    feature_store.materialize(end=ts(20), progress=lambda *args: seen.append(args))
    assert seen[0] == ("activity", 0, 3)
    assert seen[-1] == ("activity", 3, 3)

    changed = FeatureView(
        "activity",
        entities=view.entities,
        schema=[Field("clicks", "int"), Field("sessions", "int")],
        source=view.source,
        created_timestamp_field="created",
    )
    feature_store.apply([changed], force=True)
    got = feature_store.get_online_features({"user_id": [1]}, ["activity:clicks"])
    assert got.statuses["clicks"] == ["missing"]  # values of the old dtype are gone
    [record] = feature_store.materialize_incremental(end=ts(20))
    assert record.rows == 3  # from the start again
    assert feature_store.get_online_features({"user_id": [1]}, ["activity:clicks"]).to_dict()["clicks"] == [30]


def test_push_to_both_stores_reaches_training_frames_and_online_reads(
    feature_store: FeatureStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    view = activity(make_source("parquet-folder", EVENTS, tmp_path, request), ttl=None)
    feature_store.apply([view])
    fresh = pd.DataFrame({"user_id": [5], "ts": [ts(6)], "created": [ts(6)], "clicks": [7], "sessions": [8]})
    assert feature_store.push("activity", fresh, to="both") == 1
    entity_df = pd.DataFrame({"user_id": [5, 5], "event_timestamp": [ts(5), ts(7)]})
    offline = feature_store.get_historical_features(entity_df, ["activity:clicks"])
    assert offline["clicks"].tolist()[1] == 7.0
    assert pd.isna(offline["clicks"].tolist()[0])
    assert feature_store.get_online_features({"user_id": [5]}, ["activity:clicks"]).to_dict()["clicks"] == [7.0]

    single_file = activity(make_source("parquet", EVENTS, tmp_path, request))
    with pytest.raises(InvalidInputError, match="must be a FileSource over a folder"):
        feature_store.push(single_file, fresh, to="offline")
