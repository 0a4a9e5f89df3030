"""Models know their features: log_model records the service, load_model exposes it, lineage both ways."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.features import (
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    on_demand,
)
from tests.features.conftest import EVENTS, USER, ts

SCRIPT = shutil.which("shipyard", path=str(Path(sys.executable).parent)) or shutil.which("shipyard")
X = pd.DataFrame({"clicks": [1.0, 2.0, 3.0, 4.0], "sessions": [1, 2, 3, 4]})
Y = [0, 1, 0, 1]


def _per_session(view: FeatureView) -> OnDemandFeatureView:
    @on_demand(sources=[view], schema=[Field("clicks_per_session", "float")])
    def per_session(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"clicks_per_session": df["clicks"] / df["sessions"]})

    return per_session


@pytest.fixture
def store(settings: Settings, tmp_path: Path) -> FeatureStore:
    """A feature store whose view reads the hand-checked events from a Parquet file."""
    EVENTS.to_parquet(tmp_path / "events.parquet")
    feature_store = FeatureStore(online_store=f"sqlite:///{tmp_path / 'online.db'}")
    yield feature_store  # type: ignore[misc]
    feature_store.close()


def _view(tmp_path: Path, description: str = "user activity") -> FeatureView:
    source = FileSource(tmp_path / "events.parquet", timestamp_field="ts", created_timestamp_field="created")
    return FeatureView(
        "activity",
        entities=[USER],
        schema=[Field("clicks", "float"), Field("sessions", "int")],
        source=source,
        ttl="2d",
        owner="growth",
        description=description,
    )


def _model() -> DummyClassifier:
    return DummyClassifier(strategy="most_frequent").fit(X, Y)


def test_log_model_records_the_service_version_and_load_model_exposes_it(store: FeatureStore, tmp_path: Path) -> None:
    view = _view(tmp_path)
    first = FeatureService("churn", features=["activity:clicks"], owner="growth")
    store.apply([view, first])
    with sy.start_run(experiment="features") as run:
        mv1 = sy.log_model(_model(), "churn-model", input_example=X.head(2), features=first)
    assert mv1.tags["shipyard.feature_service"] == "churn"
    assert mv1.tags["shipyard.feature_service_version"] == "1"
    # No training frame came from the store in this run: log_model records the features used.
    assert sy.Client().get_run(run.id).tags["shipyard.features"] == "activity:clicks"

    second = FeatureService("churn", features=[view], owner="growth")  # both features now: version 2
    store.apply([second])
    entity = pd.DataFrame({"user_id": [1, 2], "event_timestamp": [ts(3, 12), ts(3, 12)]})
    with sy.start_run(experiment="features") as run:
        store.get_historical_features(entity, ["activity:sessions"])
        mv2 = sy.log_model(_model(), "churn-model", features="churn")  # by name: the latest applied version
        mv3 = sy.log_model(_model(), "churn-model", features=first)  # the object picks its own version
    assert mv2.tags["shipyard.feature_service_version"] == "2"
    assert mv3.tags["shipyard.feature_service_version"] == "1"
    # get_historical_features recorded what the frame held; log_model leaves it.
    assert sy.Client().get_run(run.id).tags["shipyard.features"] == "activity:sessions"

    loaded = sy.load_model("churn-model/1").feature_service
    assert loaded is not None
    assert (loaded.name, loaded.version) == ("churn", 1)
    assert sy.load_model("churn-model/2").feature_service == type(loaded)("churn", 2)  # a frozen value
    with pytest.raises(AttributeError):
        loaded.version = 2  # type: ignore[misc]
    with sy.start_run(experiment="features"):
        plain = sy.log_model(_model(), "plain")
    assert sy.load_model(plain.ref).feature_service is None

    # Serving asks for the definition as of the recorded version, not the latest.
    ref = sy.load_model("churn-model/1").feature_service
    assert ref is not None
    assert store.get_feature_service(ref.name, version=ref.version).refs == ("activity:clicks",)
    assert store.get_feature_service("churn").refs == ("activity:clicks", "activity:sessions")
    assert FeatureStore().get_feature_service("churn", version=2).refs == ("activity:clicks", "activity:sessions")
    with pytest.raises(NotFoundError, match=r"feature service 'churn' has no version 7; its versions are: 1, 2"):
        store.get_feature_service("churn", version=7)
    with pytest.raises(NotFoundError, match=r"feature service 'ghost' does not exist; known services: churn"):
        store.get_feature_service("ghost", version=1)


def test_a_service_never_applied_is_refused_and_nothing_is_written(store: FeatureStore, tmp_path: Path) -> None:
    view = _view(tmp_path)
    applied = FeatureService("churn", features=["activity:clicks"])
    store.apply([view, applied])
    changed = FeatureService("churn", features=["activity:clicks", "activity:sessions"])
    cases = [
        ("ghost", r"feature service 'ghost' was never applied; apply it first .*applied services: churn"),
        (FeatureService("other", features=[view]), r"feature service 'other' was never applied"),
        (changed, r"feature service 'churn' as given \(activity:clicks, activity:sessions\) was never applied"),
        (42, r"features must be a FeatureService or the name of an applied one, got 42"),
    ]
    for features, message in cases:
        with pytest.raises(InvalidInputError, match=message) as info:
            sy.log_model(_model(), "refused", features=features)
        assert info.value.field == "features"
    client = sy.Client()
    assert [m.name for m in client.stores.models.list_registered_models()] == []
    assert client.stores.runs.list_experiments() == []  # not even the run log_model would have started


def test_lineage_both_ways_with_definition_versions(store: FeatureStore, tmp_path: Path) -> None:
    view = _view(tmp_path)
    per_session = _per_session(view)
    service = FeatureService("churn", features=["activity:clicks", per_session])
    store.apply([view, per_session, service])
    with sy.start_run(experiment="features"):
        sy.log_model(_model(), "churn-model", features=service)
    sy.set_alias("churn-model", "champion", 1)
    newer = _view(tmp_path, description="user activity, described better")  # feature view version 2
    store.apply([newer])
    with sy.start_run(experiment="features"):
        sy.log_model(_model(), "churn-model", features=service)
    store.apply([FeatureView("other", entities=[USER], schema=[Field("clicks", "float")], source=view.source)])

    graph = sy.Client().lineage("churn-model@champion")
    assert [n.label for n in graph.of_kind("feature_service")] == ["churn@1"]
    assert [n.label for n in graph.of_kind("feature_view")] == ["activity@1"]
    assert [n.label for n in graph.of_kind("on_demand_feature_view")] == ["per_session@1"]
    edges = {(e.source, e.target, e.relation) for e in graph.edges}
    assert ("feature_service:churn@1", "model:churn-model/1", "features_for") in edges
    assert ("feature_view:activity@1", "feature_service:churn@1", "part_of") in edges
    assert ("on_demand_feature_view:per_session@1", "feature_service:churn@1", "part_of") in edges
    assert ("feature_view:activity@1", "on_demand_feature_view:per_session@1", "input_to") in edges
    # The version logged after the view changed was trained on the view's second version.
    assert [n.label for n in sy.Client().lineage("churn-model/2").of_kind("feature_view")] == ["activity@2"]

    back = sy.Client().lineage("feature_view:activity")
    assert back.root == "feature_view:activity"
    assert sorted(n.label for n in back.of_kind("model_version")) == ["churn-model/1", "churn-model/2"]
    back_edges = {(e.source, e.target, e.relation) for e in back.edges}
    assert ("feature_view:activity", "feature_service:churn@1", "part_of") in back_edges
    assert ("feature_service:churn@1", "model:churn-model/2", "features_for") in back_edges
    assert sy.Client().lineage("feature_view:other").of_kind("model_version") == []

    # A service's graph: the views it reads (as each model was trained on them) and its model versions.
    service_graph = sy.Client().lineage("feature_service:churn@1")
    assert service_graph.root == "feature_service:churn@1"
    assert sorted(n.label for n in service_graph.of_kind("feature_view")) == ["activity@1", "activity@2"]
    assert sorted(n.label for n in service_graph.of_kind("model_version")) == ["churn-model/1", "churn-model/2"]
    latest = sy.Client().lineage("feature_service:churn")
    assert latest.node("feature_service:churn").label == "churn (latest version 1)"
    assert ("feature_view:activity@2", "on_demand_feature_view:per_session@1", "input_to") in {
        (e.source, e.target, e.relation) for e in latest.edges
    }
    with pytest.raises(NotFoundError, match=r"feature service 'churn' has no version '3'; its versions are: 1"):
        sy.Client().lineage("feature_service:churn@3")
    with pytest.raises(NotFoundError, match=r"feature view 'ghost' does not exist; known views: activity, other"):
        sy.Client().lineage("feature_view:ghost")


def _shipyard(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None, "the shipyard console script is not installed"
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_catalog_and_lineage_cli_show_which_versions_use_a_view(store: FeatureStore, tmp_path: Path) -> None:
    view = _view(tmp_path)
    service = FeatureService("churn", features=[view])
    unused = FeatureView("other", entities=[USER], schema=[Field("clicks", "float")], source=view.source)
    store.apply([view, unused, service])
    with sy.start_run(experiment="features"):
        sy.log_model(_model(), "churn-model", features=service)
    sy.set_alias("churn-model", "champion", 1)

    listed = _shipyard("features", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    used_by = {row["name"]: row["used_by"] for row in json.loads(listed.stdout)}
    assert used_by == {
        "activity": [
            {
                "model": "churn-model",
                "version": 1,
                "feature_service": "churn",
                "feature_service_version": 1,
                "view_version": 1,
            }
        ],
        "other": [],
    }
    table = _shipyard("features", "list")
    row = next(line for line in table.stdout.splitlines() if "activity" in line)
    assert "churn-model/1" in row
    shown = _shipyard("features", "show", "activity")
    assert shown.returncode == 0, shown.stderr
    assert "used by (activity)" in shown.stdout
    assert "churn-model/1" in shown.stdout
    assert "churn@1" in shown.stdout
    assert "used by: no model version" in _shipyard("features", "show", "other").stdout

    forward = _shipyard("lineage", "churn-model@champion")
    assert forward.returncode == 0, forward.stderr
    assert "feature_service churn@1 (features for)" in forward.stdout
    assert "feature_view activity@1 (part of)" in forward.stdout
    backward = _shipyard("lineage", "activity")  # a bare view name: no model or dataset has it
    assert backward.returncode == 0, backward.stderr
    assert "feature_view activity (latest version 1)" in backward.stdout
    assert "part of → feature_service churn@1" in backward.stdout
    assert "features for → model_version churn-model/1" in backward.stdout
    service = _shipyard("lineage", "churn@1")  # as `features show` prints the service
    assert service.returncode == 0, service.stderr
    assert "feature_view activity@1 (part of)" in service.stdout
    assert "features for → model_version churn-model/1" in service.stdout
