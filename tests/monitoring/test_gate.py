"""The champion/challenger gate on a table you pass: min_delta, a first champion, and its refusals."""

from __future__ import annotations

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.monitoring.gate import promote_if_better
from shipyard.store import Stores
from tests.monitoring.conftest import churn_traffic, train_churn


def _version(shift: float) -> int:
    """A version fitted where churn follows tenure < 24 + shift."""
    model, frame, _ = train_churn()
    if shift:
        frame, labels = churn_traffic(3, 400, shift=shift)
        model = model.fit(frame, labels)
    with sy.start_run(experiment="churn"):
        return sy.log_model(model, "churn", input_example=frame.head(5)).version


def test_the_gate_weighs_min_delta_and_records_each_decision(settings: Settings, stores: Stores) -> None:
    stale, fresh = _version(0.0), _version(12.0)
    frame, labels = churn_traffic(9, 500, shift=12.0)  # churn moved: the fresh version knows it
    data = frame.assign(churned=labels)

    first = promote_if_better("churn", stale, metric="accuracy", data=data, label="churned")
    assert first.promoted  # no champion yet: the first challenger takes the alias
    assert first.champion is None

    strict = promote_if_better("churn", fresh, metric="accuracy", data=data, label="churned", min_delta=0.9)
    assert not strict.promoted  # better, but not by 0.9
    assert strict.challenger_score > strict.champion_score  # type: ignore[operator]
    assert stores.models.get_registered_model("churn").aliases["champion"] == stale

    chosen = promote_if_better("churn", fresh, metric="accuracy", data=data, label="churned")
    assert chosen.promoted
    assert stores.models.get_registered_model("churn").aliases["champion"] == fresh
    again = promote_if_better("churn", fresh, metric="accuracy", data=data, label="churned")
    assert not again.promoted
    assert "already is 'champion'" in again.reason

    runs = sy.Client().search_runs("monitoring", filter="tags.shipyard.gate.model = 'churn'")
    assert sorted(r.tags["shipyard.gate.decision"] for r in runs) == ["promoted", "promoted", "refused", "refused"]
    assert {r.id for r in runs} >= {first.run_id, strict.run_id, chosen.run_id, again.run_id}


def test_the_gate_refuses_to_judge_without_labels(settings: Settings, stores: Stores) -> None:
    version = _version(0.0)
    with pytest.raises(InvalidInputError, match="no labelled rows to judge churn on") as exc:
        promote_if_better("churn", version, window="1h")
    assert exc.value.field == "data"
    frame, _ = churn_traffic(1, 10)
    with pytest.raises(InvalidInputError, match="data has no label column 'label'; its columns are: tenure, plan"):
        promote_if_better("churn", version, data=frame)
    with pytest.raises(InvalidInputError, match="metric must be one of"):
        promote_if_better("churn", version, metric="auc", data=frame)
    with pytest.raises(InvalidInputError, match="the labelled rows lack input 'plan' of churn/") as missing:
        promote_if_better("churn", version, data=frame.drop(columns=["plan"]).assign(label=0))
    assert missing.value.field == "data"
