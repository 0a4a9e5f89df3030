"""Delayed labels join logged predictions by request id (and row), and metrics follow per window."""

from __future__ import annotations

import math

import numpy as np
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.monitoring.performance import windowed_performance
from shipyard.store import Stores
from tests.monitoring.conftest import write_log

T0 = 1_800_000_000.0  # a fixed hour boundary (2027-01-15T08:00:00Z)


def test_labels_join_their_own_predictions_and_windows_score_them(settings: Settings, stores: Stores) -> None:
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    write_log(stores, model="churn", inputs={"tenure": np.arange(4.0)}, outputs=scores, at=T0 + 60, prefix="a")
    write_log(stores, model="churn", inputs={"tenure": np.arange(4.0)}, outputs=scores, at=T0 + 3660, prefix="b")
    write_log(stores, model="other", inputs={"x": np.arange(4.0)}, outputs=scores, at=T0 + 60, prefix="a")

    # first hour: every label agrees with its score; second hour: every label is the opposite
    first = sy.log_labels(["a0", "a1", "a2", "a3"], [1, 1, 0, 0], model="churn")
    second = sy.log_labels(["b3", "b2", "b1", "b0"], [True, True, False, False], model="churn")

    assert (first.logged, first.unknown, second.logged) == (4, (), 4)
    report = windowed_performance("churn", window="1h", start=T0, end=T0 + 7200)
    assert report.task == "classification"
    assert [w.rows for w in report.windows] == [4, 4]
    assert report.windows[0].metrics == {"accuracy": 1.0, "roc_auc": 1.0, "f1": 1.0}
    assert report.windows[1].metrics["accuracy"] == 0.0
    assert report.windows[1].metrics["roc_auc"] == 0.0
    assert report.trend["accuracy"] == pytest.approx(-1.0)
    # "other" logged the same request ids: its predictions carry no label
    assert windowed_performance("other", window="1h", start=T0, end=T0 + 3600).windows[0].rows == 0


def test_a_later_label_replaces_an_earlier_one_and_regression_metrics_follow(
    settings: Settings, stores: Stores
) -> None:
    write_log(stores, model="price", inputs={"x": np.arange(3.0)}, outputs=np.array([1.0, 2.0, 3.0]), at=T0 + 5)
    sy.log_labels(["r0", "r1", "r2"], [0.0, 0.0, 0.0], model="price", timestamp=T0 + 100)
    sy.log_labels(["r0", "r1", "r2"], [1.0, 2.0, 5.0], model="price", timestamp=T0 + 200)

    (window,) = windowed_performance("price", window="1h", start=T0, end=T0 + 3600, task="regression").windows
    assert window.rows == 3
    assert window.metrics["mae"] == pytest.approx(2 / 3)
    assert window.metrics["rmse"] == pytest.approx(math.sqrt(4 / 3))


def test_labels_for_unknown_request_ids_are_refused_or_reported(settings: Settings, stores: Stores) -> None:
    write_log(stores, model="churn", inputs={"x": np.arange(2.0)}, outputs=np.array([0.2, 0.7]), at=T0)

    with pytest.raises(InvalidInputError, match=r"2 of 3 request ids have no logged prediction.*'nope', 'r0x'") as exc:
        sy.log_labels(["r0", "nope", "r0x"], [1, 0, 1], model="churn")
    assert exc.value.field == "request_ids"
    # nothing was stored by the refused call
    assert windowed_performance("churn", window="1h", start=T0, end=T0 + 3600).windows[0].rows == 0

    partial = sy.log_labels(["r0", "nope", "r1", "r1"], [0, 1, 1, 1], model="churn", strict=False)
    assert partial.logged == 2
    assert partial.unknown == ("nope", "r1")  # r1 has one row: its second label matches nothing
    assert windowed_performance("churn", window="1h", start=T0, end=T0 + 3600).windows[0].rows == 2


def test_bad_labels_name_the_field(settings: Settings, stores: Stores) -> None:
    with pytest.raises(InvalidInputError, match="one value per request id: 2 request ids, 1 labels"):
        sy.log_labels(["a", "b"], [1])
    with pytest.raises(InvalidInputError, match="labels must be numbers or booleans") as exc:
        sy.log_labels(["a"], ["yes"])
    assert exc.value.field == "labels"
    with pytest.raises(InvalidInputError, match="request_ids is empty"):
        sy.log_labels([], [])
    with pytest.raises(InvalidInputError, match="timestamp must be epoch seconds") as exc:
        sy.log_labels(["a"], [1], timestamp="yesterday")  # type: ignore[arg-type]
    assert exc.value.field == "timestamp"
