"""The loop closes: drifted traffic -> monitor -> alert -> on_alert flow -> challenger -> the gate decides."""

from __future__ import annotations

from typing import Any

import numpy as np

import shipyard as sy
from shipyard.config import Settings
from shipyard.flows import flow, on_alert, task
from shipyard.flows.scheduler import Scheduler
from shipyard.monitoring.gate import promote_if_better
from shipyard.monitoring.labels import read_labelled
from shipyard.monitoring.monitor import monitor
from shipyard.store import Stores
from tests.monitoring.conftest import churn_traffic, train_churn, write_log

T0 = 1_800_000_000.0
HOUR = 3600.0
FEATURES = ["tenure", "plan"]
RULES = ["churn-drift: psi(tenure) > 0.2", "churn-missing: missing_rate(plan) > 0.1"]


@task
def train_on_recent(alert: dict[str, Any]) -> int:
    """Fit on what production saw in the alert's window (the new behaviour)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    recent = read_labelled("churn", window="1h", end=alert["end"])
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(recent[FEATURES], recent["label"])
    with sy.start_run(experiment="churn-retrain"):
        mv = sy.log_model(model, "churn", input_example=recent[FEATURES].head(5), training_data=recent[FEATURES])
    return mv.version


@task
def train_on_reference(alert: dict[str, Any]) -> int:
    """Refit on the original training data (what a team might do when live inputs look broken)."""
    model, frame, _ = train_churn()
    with sy.start_run(experiment="churn-retrain"):
        mv = sy.log_model(model, "churn", input_example=frame.head(5), training_data=frame)
    return mv.version


@task
def gate(version: int, alert: dict[str, Any]) -> bool:
    decision = promote_if_better("churn", version, metric="accuracy", window="1h", end=alert["end"])
    return decision.promoted


@flow(triggers=[on_alert("churn-drift", param="alert")])
def retrain(alert: dict[str, Any] | None = None) -> bool:
    assert alert is not None
    return bool(gate(train_on_recent(alert), alert).result())


@flow(triggers=[on_alert("churn-missing", param="alert")])
def refit(alert: dict[str, Any] | None = None) -> bool:
    assert alert is not None
    return bool(gate(train_on_reference(alert), alert).result())


def _serve(stores: Stores, hour: int, *, missing_plan: float = 0.0) -> None:
    """An hour of drifted traffic (tenure +12, and churn follows it), answered by the champion, then labelled."""
    frame, labels = churn_traffic(200 + hour, 400, shift=12.0)
    frame.loc[np.random.default_rng(hour).random(len(frame)) < missing_plan, "plan"] = np.nan
    outputs = np.asarray(sy.load_model("churn@champion").predict(frame), dtype=np.float64)
    _, ids = write_log(
        stores,
        model="churn",
        inputs={c: frame[c].to_numpy() for c in FEATURES},
        outputs=outputs,
        at=T0 + hour * HOUR + 60,
        version=sy.Client().stores.models.get_registered_model("churn").aliases["champion"],
        prefix=f"h{hour}-",
    )
    sy.log_labels(ids, labels, model="churn")


def _decisions(stores: Stores) -> list[dict[str, str]]:
    experiment = stores.runs.get_experiment("monitoring")
    runs = stores.runs.search_runs(
        [experiment.id],
        filter="tags.shipyard.gate.model = 'churn'",
        order_by=["start_time asc"],
        max_results=10,
        page_token=None,
    )
    return [dict(r.tags) | {f"metric.{k}": str(round(v, 3)) for k, v in r.metrics.items()} for r in runs]


def test_drift_alerts_start_retraining_and_the_gate_promotes_only_a_better_challenger(
    settings: Settings, stores: Stores
) -> None:
    model, frame, _ = train_churn()
    with sy.start_run(experiment="churn"):
        first = sy.log_model(model, "churn", input_example=frame.head(5), training_data=frame)
    sy.set_alias("churn", "champion", first.version)
    scheduler = Scheduler([retrain, refit], max_concurrent_runs=1)
    assert scheduler.tick() == []  # the triggers' cursors start here

    # hour 1: behaviour shifts; the monitor sees it, the drift alert starts `retrain`
    _serve(stores, 1)
    report = monitor("churn@champion", window="1h", end=T0 + 2 * HOUR, rules=RULES)
    assert report.drift is not None
    assert "tenure" in report.drift.drifted
    assert report.firing == ["churn-drift"]
    assert report.values["accuracy"] < 0.8  # the champion's labels show it, too
    (queued,) = scheduler.tick()
    assert (queued.flow_name, queued.params["alert"]["alert"]) == ("retrain", "churn-drift")
    scheduler.run_pending(wait=True)
    assert [r.state for r in stores.flows.list_flow_runs("retrain")] == ["succeeded"]

    (promoted,) = _decisions(stores)
    assert promoted["shipyard.gate.decision"] == "promoted"
    assert (promoted["shipyard.gate.challenger"], promoted["shipyard.gate.champion"]) == ("churn/2", "churn/1")
    assert float(promoted["metric.challenger.accuracy"]) > float(promoted["metric.champion.accuracy"])
    assert sy.Client().stores.models.get_registered_model("churn").aliases["champion"] == 2
    assert stores.models.get_model_version("churn", 2).tags["shipyard.gate.decision"] == "promoted"

    # hour 2: plan goes missing for a third of requests; `refit` trains on the old data, which is worse now
    _serve(stores, 2, missing_plan=0.3)
    report = monitor("churn@champion", window="1h", end=T0 + 3 * HOUR, rules=RULES)
    assert report.alerts["churn-drift"].state == "resolved"  # version 2 was trained on the new behaviour
    assert report.firing == ["churn-missing"]
    (queued,) = scheduler.tick()
    assert queued.flow_name == "refit"
    scheduler.run_pending(wait=True)
    scheduler.close()

    refused = _decisions(stores)[-1]
    assert refused["shipyard.gate.decision"] == "refused"
    assert (refused["shipyard.gate.challenger"], refused["shipyard.gate.champion"]) == ("churn/3", "churn/2")
    assert float(refused["metric.challenger.accuracy"]) < float(refused["metric.champion.accuracy"])
    assert sy.Client().stores.models.get_registered_model("churn").aliases["champion"] == 2
    gate_run = stores.models.get_model_version("churn", 3).tags["shipyard.gate.run"]
    assert stores.runs.get_run(gate_run).params["challenger"] == "churn/3"
