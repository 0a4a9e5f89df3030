"""``sy.autolog()`` records scikit-learn, XGBoost and LightGBM fits with no logging code."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.config import Settings


@pytest.fixture
def autologged(settings: Settings) -> Iterator[None]:
    sy.autolog()
    yield
    sy.autolog(disable=True)


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "n": rng.integers(0, 5, 200)})
    y = (x["a"] + 0.5 * x["b"] > 0).astype(int).to_numpy()
    return x, y


def test_sklearn_fit_outside_a_run_gets_its_own_recorded_run(autologged: None) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    model = LogisticRegression(C=0.3).fit(x, y)
    client = sy.Client()
    run = client.search_runs(filter="name = 'LogisticRegression'").items[0]
    assert run.status == "finished"
    assert run.params["C"] == "0.3"
    assert run.tags["autolog.estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert 0.8 < run.metrics["training_accuracy"] <= 1.0
    assert "training_roc_auc" in run.metrics
    version = client.stores.models.versions_for_runs([run.id])[0]
    assert version.name == "logisticregression"
    assert [c["name"] for c in version.signature["inputs"]] == ["a", "b", "n"]  # type: ignore[index]
    inputs = client.stores.datasets.run_datasets([run.id])
    assert [(d.name, d.role) for d in inputs] == [("logisticregression-train", "input")]
    loaded = sy.load_model("logisticregression")
    assert list(loaded.predict(x.head(5))) == list(model.predict(x.head(5)))


def test_pipeline_inner_fits_are_not_recorded_twice(autologged: None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _data()
    with sy.start_run(experiment="auto", name="pipe") as run:
        make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    client = sy.Client()
    assert [r.name for r in client.search_runs("auto").items] == ["pipe"]
    assert [v.name for v in client.stores.models.versions_for_runs([run.id])] == ["pipeline"]


def test_boosters_log_per_iteration_evaluation(autologged: None) -> None:
    import lightgbm
    import xgboost

    x, y = _data()
    with sy.start_run(experiment="boost", name="xgb") as xgb_run:
        xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y, eval_set=[(x, y)], verbose=False)
    with sy.start_run(experiment="boost", name="lgbm") as lgbm_run:
        lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y, eval_X=(x,), eval_y=(y,))
    client = sy.Client()
    xgb_history = client.get_metric_history(xgb_run.id, "validation_0_logloss")
    assert [p.step for p in xgb_history] == [0, 1, 2, 3, 4]
    assert xgb_history[-1].value < xgb_history[0].value
    assert len(client.get_metric_history(lgbm_run.id, "valid_0_binary_logloss")) == 5
    assert client.get_run(lgbm_run.id).params["n_estimators"] == "5"


def _own_fits() -> dict[type, object]:
    import warnings

    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes = [cls for _, cls in all_estimators()]
    return {cls: cls.__dict__["fit"] for cls in classes if "fit" in cls.__dict__}


def test_disable_restores_the_original_fit_function_objects(settings: Settings) -> None:
    from sklearn.linear_model import LinearRegression

    before = _own_fits()
    sy.autolog()
    try:
        assert LinearRegression.__dict__["fit"] is not before[LinearRegression], "autolog patches fit"
    finally:
        sy.autolog(disable=True)

    after = _own_fits()
    assert [cls.__name__ for cls in before if after[cls] is not before[cls]] == []
    assert not any("shipyard" in name for cls in before for name in cls.__dict__)
    # A fit that still went through the patch would record a run here: it must not.
    sy.autolog()
    sy.autolog(disable=True)
    x, y = _data()
    LinearRegression().fit(x, y)
    assert len(sy.Client().search_runs()) == 0
    assert sy.Client().list_experiments() == []
