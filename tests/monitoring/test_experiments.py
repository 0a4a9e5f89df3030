"""Live-traffic experiments: per-arm accuracy from delayed labels, a bootstrap interval, a recommendation."""

from __future__ import annotations

import numpy as np
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.monitoring.experiments import compare_arms
from shipyard.monitoring.gate import promote_if_recommended
from shipyard.store import Stores
from tests.monitoring.conftest import train_churn, write_log

T0 = 1_800_000_000.0


def _arm(
    stores: Stores, arm: str, version: int, correct: float, *, rows: int = 400, seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """Log ``rows`` predictions of which a share ``correct`` match the labels; returns ids and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    right = rng.random(rows) < correct
    predictions = np.where(right, labels, 1 - labels).astype(np.float64)
    _, ids = write_log(
        stores,
        model="churn",
        inputs={"x": rng.normal(size=rows)},
        outputs=predictions,
        at=T0 + 60,
        arm=arm,
        version=version,
        prefix=f"{arm}-",
    )
    return ids, labels


def _register_two() -> None:
    model, frame, _ = train_churn()
    for _ in range(2):
        with sy.start_run(experiment="churn"):
            sy.log_model(model, "churn", input_example=frame.head(5))
    sy.set_alias("churn", "champion", 1)


def test_a_better_canary_is_recommended_and_the_gate_promotes_it(settings: Settings, stores: Stores) -> None:
    _register_two()
    for arm, version, correct in (("primary", 1, 0.70), ("canary", 2, 0.90)):
        ids, labels = _arm(stores, arm, version, correct, seed=version)
        sy.log_labels(ids, labels, model="churn")

    result = compare_arms("churn", metric="accuracy", candidate="canary", window="1h", end=T0 + 3600)

    assert (result.baseline.arm, result.baseline.version, result.baseline.rows) == ("primary", 1, 400)
    assert (result.candidate.arm, result.candidate.version) == ("canary", 2)
    assert result.difference == pytest.approx(result.candidate.value - result.baseline.value)
    assert 0.1 < result.difference < 0.3
    assert 0 < result.ci_low < result.difference < result.ci_high
    assert not result.paired
    assert result.recommendation == "promote"
    assert result.p_value < 0.01
    # the same data and seed give the same interval
    again = compare_arms("churn", metric="accuracy", candidate="canary", window="1h", end=T0 + 3600)
    assert (again.ci_low, again.ci_high) == (result.ci_low, result.ci_high)

    decision = promote_if_recommended(result)
    assert decision.promoted
    assert sy.Client().stores.models.get_registered_model("churn").aliases["champion"] == 2
    assert sy.Client().get_run(decision.run_id).tags["shipyard.gate.decision"] == "promoted"


def test_a_worse_arm_is_kept_out_and_a_close_one_is_inconclusive(settings: Settings, stores: Stores) -> None:
    _register_two()
    for arm, version, correct in (("primary", 1, 0.80), ("canary", 2, 0.60), ("shadow", 2, 0.80)):
        ids, labels = _arm(stores, arm, version, correct, seed=version)
        sy.log_labels(ids, labels, model="churn")

    worse = compare_arms("churn", metric="accuracy", candidate="canary", window="1h", end=T0 + 3600)
    assert worse.recommendation == "keep"
    assert worse.ci_high < 0
    assert promote_if_recommended(worse).promoted is False
    assert sy.Client().stores.models.get_registered_model("churn").aliases["champion"] == 1

    few = compare_arms("churn", metric="accuracy", candidate="canary", window="1h", end=T0 + 3600, min_rows=1000)
    assert few.recommendation == "inconclusive"
    assert "fewer than 1000" in few.reason


def test_a_shadow_is_compared_on_the_same_requests(settings: Settings, stores: Stores) -> None:
    rows = 300
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, rows)
    inputs = {"x": rng.normal(size=rows)}
    primary = np.where(rng.random(rows) < 0.75, labels, 1 - labels).astype(np.float64)
    shadow = primary.copy()
    shadow[:30] = labels[:30]  # the shadow fixes some of the primary's mistakes and breaks none
    for arm, outputs in (("primary", primary), ("shadow", shadow)):
        _, ids = write_log(stores, model="churn", inputs=inputs, outputs=outputs, at=T0 + 60, arm=arm, prefix="req-")
    sy.log_labels(ids, labels, model="churn")  # one call labels both arms: they answered the same requests

    result = compare_arms("churn", metric="accuracy", candidate="shadow", window="1h", end=T0 + 3600)

    assert result.paired
    assert result.difference == pytest.approx(float((primary[:30] != labels[:30]).sum()) / rows)
    assert result.ci_low > 0
    assert result.recommendation == "promote"


def test_an_arm_without_labels_is_a_clear_error(settings: Settings, stores: Stores) -> None:
    ids, labels = _arm(stores, "primary", 1, 0.8)
    sy.log_labels(ids, labels, model="churn")
    with pytest.raises(InvalidInputError, match="arm 'canary' of model 'churn' has no labelled predictions") as exc:
        compare_arms("churn", candidate="canary", window="1h", end=T0 + 3600)
    assert exc.value.field == "candidate"


def test_each_bootstrap_draw_scores_only_the_metric_asked_for_with_the_same_values() -> None:
    from shipyard.monitoring.experiments import _metric
    from shipyard.monitoring.performance import evaluate

    rng = np.random.default_rng(3)
    y, scores = (rng.random(500) < 0.4).astype(float), rng.random(500)
    full = evaluate(y, scores, task="classification")
    for metric in ("accuracy", "roc_auc", "f1"):
        assert _metric(y, scores, metric, "classification") == pytest.approx(full[metric])
    assert _metric(y, scores, "rmse", "regression") == pytest.approx(evaluate(y, scores, task="regression")["rmse"])
