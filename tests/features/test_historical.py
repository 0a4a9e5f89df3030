"""Point-in-time correctness against hand-computed answers, on every kind of source."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.features import FeatureStore
from tests.features.conftest import EVENTS, USER, activity, make_source, ts

# (user, timestamp, expected clicks, expected sessions, why); the rows are deliberately unsorted.
CASES = [
    (1, ts(2, 12), 1.0, 10, "latest value 1.5 days old, within the 2-day ttl"),
    (2, ts(5), None, None, "latest value 3 days old: expired by ttl"),
    (1, ts(3), 30.0, 12, "three rows at this event time: the latest created wins"),
    (3, ts(5), None, None, "entity with no history"),
    (4, ts(9), None, None, "entity row earlier than any of its values"),
    (2, ts(3), 2.0, 20, "a day old"),
    (1, ts(4, 23), 30.0, 12, "still the tie's winner"),
    (1, ts(5), 30.0, 12, "exactly ttl old is still within ttl"),
    (1, ts(5, 0, 0, 1), None, None, "one second past ttl"),
]


def entity_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [c[0] for c in CASES],
            "event_timestamp": [c[1] for c in CASES],
            "label": list(range(len(CASES))),
        }
    )


def _same(actual: object, expected: object) -> bool:
    if expected is None:
        return actual is None or (isinstance(actual, float) and math.isnan(actual)) or actual is pd.NA
    return actual == expected


@pytest.mark.parametrize(
    "source_kind",
    [
        "parquet",
        "parquet-folder",
        "csv",
        "frame",
        "duckdb",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_training_frame_is_point_in_time_correct(
    source_kind: str, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from shipyard.client import Client

    view = activity(make_source(source_kind, EVENTS, tmp_path, request))
    store = FeatureStore(online_store=f"sqlite:///{tmp_path / 'online.db'}", client=Client(settings=settings))
    store.apply([USER, view])

    frame = store.get_historical_features(entity_frame(), ["activity:clicks", "activity:sessions"])

    assert list(frame.columns) == ["user_id", "event_timestamp", "label", "clicks", "sessions"]
    assert frame["label"].tolist() == list(range(len(CASES)))  # every row, in the given order
    for (_, _, clicks, sessions, why), (_, row) in zip(CASES, frame.iterrows(), strict=True):
        assert _same(row["clicks"], clicks), why
        assert _same(row["sessions"], sessions), why


def test_arrow_output_keeps_declared_types(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from shipyard.client import Client

    store = FeatureStore(client=Client(settings=settings))
    store.apply([activity(make_source("parquet", EVENTS, tmp_path, request))])
    table = store.get_historical_features(entity_frame(), ["activity:sessions"], to="arrow")
    assert str(table.schema.field("sessions").type) == "int64"
    assert table.column("sessions").to_pylist() == [c[3] for c in CASES]


def test_a_fresh_store_rebuilds_the_view_from_its_stored_definition(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from shipyard.client import Client

    FeatureStore(client=Client(settings=settings)).apply([activity(make_source("parquet", EVENTS, tmp_path, request))])
    other = FeatureStore(client=Client(settings=settings))  # knows the view only from the metadata store
    frame = other.get_historical_features(entity_frame(), ["activity:clicks"])
    assert [_same(a, c[2]) for a, c in zip(frame["clicks"], CASES, strict=True)] == [True] * len(CASES)


def test_bad_requests_name_what_is_wrong(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from shipyard.client import Client

    store = FeatureStore(client=Client(settings=settings))
    store.apply([activity(make_source("parquet", EVENTS, tmp_path, request))])
    no_time = entity_frame().drop(columns=["event_timestamp"])
    with pytest.raises(InvalidInputError, match=r"no timestamp column 'event_timestamp'.*user_id, label"):
        store.get_historical_features(no_time, ["activity:clicks"])
    with pytest.raises(InvalidInputError, match=r"unknown feature activity:click; known features: activity:clicks"):
        store.get_historical_features(entity_frame(), ["activity:click"])
    with pytest.raises(InvalidInputError, match="no join key 'user_id'"):
        store.get_historical_features(entity_frame().drop(columns=["user_id"]), ["activity:clicks"])
    with pytest.raises(InvalidInputError, match="'view:feature'"):
        store.get_historical_features(entity_frame(), ["clicks"])


def test_a_training_frame_in_a_run_is_logged_with_its_features(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import shipyard as sy
    from shipyard.client import Client
    from shipyard.features import FeatureService

    client = Client(settings=settings)
    view = activity(make_source("parquet", EVENTS, tmp_path, request))
    service = FeatureService("churn", features=[view])
    store = FeatureStore(client=client)
    store.apply([view, service])
    with sy.start_run(experiment="churn") as run:
        frame = store.get_historical_features(entity_frame(), service)
    assert list(frame.columns)[-2:] == ["clicks", "sessions"]
    assert client.get_run(run.id).tags["shipyard.features"] == "activity:clicks,activity:sessions"
    logged = sy.load_dataset("churn").to_pandas()
    assert logged["label"].tolist() == list(range(len(CASES)))


def test_batches_stream_the_same_frame_and_an_empty_entity_frame_keeps_the_columns(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import pyarrow as pa

    from shipyard.client import Client
    from shipyard.features import _offline

    store = FeatureStore(client=Client(settings=settings))
    store.apply([activity(make_source("parquet", EVENTS, tmp_path, request))])
    whole = store.get_historical_features(entity_frame(), ["activity:clicks"], to="arrow")
    small = pytest.MonkeyPatch.context()
    with small as patch:
        patch.setattr(_offline, "BATCH_ROWS", 2)  # several batches, each matched to its slice of rows
        reader = store.get_historical_features(entity_frame(), ["activity:clicks"], to="batches")
        batches = list(reader)
    assert len(batches) > 1
    assert pa.Table.from_batches(batches).equals(whole)

    empty = store.get_historical_features(entity_frame().iloc[:0], ["activity:clicks"], to="arrow")
    assert empty.num_rows == 0
    assert empty.column_names == ["user_id", "event_timestamp", "label", "clicks"]


def test_several_views_composite_keys_and_time_zones(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import datetime as dt

    from shipyard.client import Client
    from shipyard.features import DataFrameSource, Entity, FeatureView, Field

    store = FeatureStore(client=Client(settings=settings))
    clicks = activity(make_source("parquet", EVENTS, tmp_path, request))
    shop = Entity("shop", join_keys=["shop_id"])
    spend = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "shop_id": ["a", "b", "a"],
            "at": [ts(1), ts(1), ts(1)],
            "clicks": [100.0, 200.0, 300.0],
        }
    )
    per_shop = FeatureView(
        "spend",
        entities=[USER, shop],
        schema=[Field("clicks", "float")],
        source=DataFrameSource(spend, timestamp_field="at"),
    )
    store.apply([clicks, per_shop])
    plus_two = dt.timezone(dt.timedelta(hours=2))
    entity_df = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "shop_id": ["b", "a", "b"],
            # 3 Jan 02:00 at UTC+2 is 3 Jan 00:00 UTC: the tie's winner, not the 1 Jan value.
            "event_timestamp": [dt.datetime(2026, 1, 3, 2, tzinfo=plus_two)] * 3,
        }
    )
    refs = ["activity:clicks", "spend:clicks"]
    with pytest.raises(InvalidInputError, match="full_feature_names=True"):
        store.get_historical_features(entity_df, refs)
    frame = store.get_historical_features(entity_df, refs, full_feature_names=True)
    assert frame["activity__clicks"].tolist() == [30.0, 30.0, 2.0]
    assert frame["spend__clicks"].tolist()[:2] == [200.0, 100.0]
    assert pd.isna(frame["spend__clicks"].tolist()[2])  # user 2 never spent at shop b
    store.materialize(end=ts(5))
    got = store.get_online_features({"user_id": [1, 2], "shop_id": ["b", "b"]}, ["spend:clicks"])
    assert got.to_dict()["clicks"] == [200.0, None]
    store.close()
