"""``shipyard features``: plan/apply a definitions file, list/show the catalog, materialize."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.features import FeatureStore
from tests.features.conftest import EVENTS, ts

DEFINITIONS = """
import pandas as pd
from shipyard.features import Entity, FeatureService, FeatureView, Field, FileSource, on_demand

user = Entity("user", join_keys=["user_id"], description="a registered user")
activity = FeatureView(
    "activity", entities=[user], ttl=None, owner="growth", description="clicks and sessions",
    source=FileSource({path!r}, timestamp_field="ts", created_timestamp_field="created"),
    schema=[Field("clicks", "float", "clicks so far"), {extra}],
)

@on_demand(sources=[activity], request=[Field("amount", "float")], schema=[Field("per_amount", "float")])
def per_amount(df):
    return pd.DataFrame({{"per_amount": df["clicks"] / df["amount"]}})

churn = FeatureService("churn", features=[activity, per_amount])
"""


def _shipyard(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "features", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _write(folder: Path, extra: str) -> Path:
    EVENTS.to_parquet(folder / "events.parquet")
    path = folder / "repo.py"
    path.write_text(DEFINITIONS.format(path=str(folder / "events.parquet"), extra=extra))
    return path


@pytest.mark.slow
def test_plan_apply_list_show_and_materialize(settings: Settings, tmp_path: Path) -> None:
    path = _write(tmp_path, 'Field("sessions", "int")')
    planned = _shipyard("plan", str(path))
    assert planned.returncode == 0, planned.stderr
    assert "create" in planned.stdout
    assert "activity" in planned.stdout
    applied = _shipyard("apply", str(path))
    assert applied.returncode == 0, applied.stderr
    assert "unchanged" in _shipyard("plan", str(path)).stdout

    listed = _shipyard("list")
    assert listed.returncode == 0, listed.stderr
    assert "growth" in listed.stdout
    assert "clicks and sessions" in listed.stdout
    shown = _shipyard("show", "activity")
    assert "clicks so far" in shown.stdout
    assert "user_id" in shown.stdout

    done = _shipyard("materialize", "--end", ts(5).isoformat())
    assert done.returncode == 0, done.stderr
    assert "activity: 2 entities" in done.stdout
    # Another process (this one) reads the values and runs the file's on-demand function.
    got = FeatureStore().get_online_features({"user_id": [1, 3], "amount": [2.0, 2.0]}, ["per_amount:per_amount"])
    assert got.to_dict()["per_amount"] == [15.0, None]
    assert "2026-01-03" in _shipyard("list").stdout  # freshness: the latest materialized event


@pytest.mark.slow
def test_breaking_change_is_refused_with_one_line(settings: Settings, tmp_path: Path) -> None:
    path = _write(tmp_path, 'Field("sessions", "int")')
    assert _shipyard("apply", str(path)).returncode == 0
    narrowed = _write(tmp_path, 'Field("sessions", "float")')
    refused = _shipyard("apply", str(narrowed))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: apply would break readers of feature_view 'activity': feature 'sessions' changed dtype int -> float; "
        "pass force=True to apply anyway"
    ]
    assert _shipyard("apply", str(narrowed), "--force").returncode == 0
    missing = _shipyard("show", "nope")
    assert missing.returncode == 2
    assert "feature view 'nope' does not exist; known views: activity" in missing.stderr
