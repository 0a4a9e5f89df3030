"""Both point-in-time join plans (hash join in the ttl window, ASOF) give the hand-checked answers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.features import FeatureStore, FeatureView, Field, FileSource
from shipyard.features import _offline as offline
from tests.features.conftest import EVENTS, USER, activity, ts
from tests.features.test_historical import CASES, _same, entity_frame


def _store(settings: Settings, tmp_path: Path) -> FeatureStore:
    from shipyard.client import Client

    return FeatureStore(online_store=f"sqlite:///{tmp_path / 'online.db'}", client=Client(settings=settings))


def _spy_plans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which join each view gets, in order."""
    chosen: list[str] = []
    for name in ("_window_join", "_asof_join"):
        real = getattr(offline, name)

        def spy(*args, _real=real, _name=name):  # type: ignore[no-untyped-def]
            chosen.append(_name)
            return _real(*args)

        monkeypatch.setattr(offline, name, spy)
    return chosen


@pytest.mark.parametrize("plan", ["window", "asof"])
def test_each_plan_is_point_in_time_correct(
    plan: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bound of -1 pair refuses the window join even for no pairs; a huge one always takes it.
    monkeypatch.setattr(offline, "WINDOW_PAIRS", 10**9 if plan == "window" else -1)
    chosen = _spy_plans(monkeypatch)
    EVENTS.to_parquet(tmp_path / "events.parquet")
    store = _store(settings, tmp_path)
    store.apply([activity(FileSource(tmp_path / "events.parquet", timestamp_field="ts"))])

    frame = store.get_historical_features(entity_frame(), ["activity:clicks", "activity:sessions"])

    assert chosen == [f"_{plan}_join"]
    assert frame["label"].tolist() == list(range(len(CASES))), "rows keep their order"
    for (_, _, clicks, sessions, why), got_c, got_s in zip(CASES, frame["clicks"], frame["sessions"], strict=True):
        assert _same(got_c, clicks), f"{plan}: {why}"
        assert _same(got_s, sessions), f"{plan}: {why}"


def test_a_long_history_under_many_entity_rows_takes_asof(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One user, 400 values and 400 entity rows: 160,000 pairs against 800 rows, so ASOF; a
    # second view with one value per user joins in the window, in the same query.
    chosen = _spy_plans(monkeypatch)
    stamps = pd.date_range("2026-01-01", periods=400, freq="h")
    pd.DataFrame({"user_id": 1, "ts": stamps, "clicks": range(400)}).to_parquet(tmp_path / "long.parquet")
    pd.DataFrame({"user_id": [1], "ts": [ts(1)], "plan": [7]}).to_parquet(tmp_path / "short.parquet")
    long_view = FeatureView(
        "long",
        entities=[USER],
        schema=[Field("clicks", "int")],
        source=FileSource(tmp_path / "long.parquet", timestamp_field="ts"),
        ttl="1h",
    )
    short_view = FeatureView(
        "short",
        entities=[USER],
        schema=[Field("plan", "int")],
        source=FileSource(tmp_path / "short.parquet", timestamp_field="ts"),
        ttl="30d",
    )
    store = _store(settings, tmp_path)
    store.apply([USER, long_view, short_view])
    # Each entity row half an hour after a value: that value; the first row, before any, gets null.
    when = [stamps[0] - pd.Timedelta("30min"), *(stamps[1:] + pd.Timedelta("30min"))]
    entity = pd.DataFrame({"user_id": 1, "event_timestamp": when})

    frame = store.get_historical_features(entity, ["long:clicks", "short:plan"], to="arrow")

    assert chosen == ["_asof_join", "_window_join"]
    assert frame.column("clicks").to_pylist() == [None, *range(1, 400)]
    assert frame.column("plan").to_pylist() == [None, *([7] * 399)]
