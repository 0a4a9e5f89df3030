"""Definitions are checked when built, versioned by apply, and breaking changes are refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import ConflictError, InvalidInputError
from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, parse_ttl


def _view(folder: Path, schema: list[Field], description: str = "") -> FeatureView:
    user = Entity("user", join_keys=["user_id"])
    source = FileSource(folder / "events.parquet", timestamp_field="ts")
    return FeatureView("activity", entities=[user], schema=schema, source=source, ttl="7d", description=description)


def test_bad_definitions_name_the_field() -> None:
    src = FileSource("events.parquet", timestamp_field="ts")
    user = Entity("user", join_keys=["user_id"])
    with pytest.raises(InvalidInputError, match="dtype 'decimal'; expected one of: int, float") as err:
        Field("x", "decimal")
    assert err.value.field == "dtype"
    with pytest.raises(InvalidInputError, match="ttl must be a timedelta or a string such as '7d'") as err:
        FeatureView("v", entities=[user], schema=[Field("x", "int")], source=src, ttl="seven days")
    assert err.value.field == "ttl"
    with pytest.raises(InvalidInputError, match="timestamp_field is required"):
        FeatureView("v", entities=[user], schema=[Field("x", "int")], source=FileSource("e.parquet"))
    with pytest.raises(InvalidInputError, match="entities must be a non-empty list"):
        FeatureView("v", entities=[], schema=[Field("x", "int")], source=src)
    with pytest.raises(InvalidInputError, match="feature ref must be 'view:feature'"):
        FeatureService("svc", features=["v.x"])
    assert parse_ttl("12h") == dt.timedelta(hours=12)
    assert Field("n", "int64").dtype == "int"


def test_apply_versions_changes_and_refuses_breaking_ones(settings: Settings, tmp_path: Path) -> None:
    from shipyard.client import Client

    store = FeatureStore(client=Client(settings=settings))
    first = _view(tmp_path, [Field("clicks", "float"), Field("sessions", "int")])
    saved = {d.kind: d.version for d in store.apply([first])}
    assert saved == {"entity": 1, "feature_view": 1}
    assert {d.version for d in store.apply([first])} == {1}  # unchanged: no new version

    described = _view(tmp_path, [Field("clicks", "float"), Field("sessions", "int")], description="user activity")
    assert [c.action for c in store.plan([described])] == ["unchanged", "update"]
    assert {d.kind: d.version for d in store.apply([described])}["feature_view"] == 2

    narrower = _view(tmp_path, [Field("clicks", "int")])
    with pytest.raises(ConflictError, match=r"feature 'sessions' removed, feature 'clicks' changed dtype float -> int"):
        store.apply([narrower])
    assert store.get_feature_view("activity").description == "user activity"  # nothing was applied
    assert {d.kind: d.version for d in store.apply([narrower], force=True)}["feature_view"] == 3

    fresh = FeatureStore(client=Client(settings=settings))
    assert fresh.get_feature_view("activity").schema == (Field("clicks", "int"),)
    versions = store.stores.features.list_feature_definition_versions("feature_view", "activity")
    assert [v.version for v in versions] == [1, 2, 3]


def test_a_service_must_name_known_features(settings: Settings, tmp_path: Path) -> None:
    from shipyard.client import Client

    store = FeatureStore(client=Client(settings=settings))
    view = _view(tmp_path, [Field("clicks", "float")])
    with pytest.raises(InvalidInputError, match=r"unknown features \['activity:nope'\]"):
        store.apply([view, FeatureService("churn", features=["activity:nope"])])
    store.apply([view, FeatureService("churn", features=[view])])
    assert store.get_feature_service("churn").refs == ("activity:clicks",)


def test_apply_takes_what_an_on_demand_view_or_service_references(settings: Settings, tmp_path: Path) -> None:
    import pandas as pd

    from shipyard.client import Client
    from shipyard.features import on_demand

    view = _view(tmp_path, [Field("clicks", "float")])

    @on_demand(sources=[view], schema=[Field("double_clicks", "float")])
    def double_clicks(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"double_clicks": df["clicks"] * 2})

    store = FeatureStore(client=Client(settings=settings))
    saved = store.apply([FeatureService("svc", features=[double_clicks])])
    assert sorted(d.kind for d in saved) == ["entity", "feature_service", "feature_view", "on_demand_feature_view"]
    other = _view(tmp_path, [Field("clicks", "float")], description="another activity")
    with pytest.raises(InvalidInputError, match="two different feature_view definitions are named 'activity'"):
        store.apply([other, double_clicks])
