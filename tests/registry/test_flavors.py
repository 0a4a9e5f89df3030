"""Every flavor round-trips: what load_model predicts equals what the original model predicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.tracking.api import start_run

Data = tuple[pd.DataFrame, np.ndarray[Any, Any]]


def _round_trip(model: Any, x: Any, **kwargs: Any) -> reg.LoadedModel:
    mv = reg.log_model(model, "m", input_example=x[:5], **kwargs)
    loaded = reg.load_model(mv.ref)
    assert loaded.version == mv
    return loaded


def test_sklearn_logistic_regression(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = churn
    model = LogisticRegression(max_iter=2000).fit(x, y)
    loaded = _round_trip(model, x)
    assert loaded.flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.raw.coef_.tolist() == model.coef_.tolist()


def test_sklearn_pipeline_with_a_string_column(settings: Settings, churn: Data) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    x, y = churn
    x = x.assign(plan=np.where(x["age"] > 40, "gold", "basic"))
    encode = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    model = Pipeline([("encode", encode), ("forest", RandomForestClassifier(n_estimators=5, random_state=0))])
    model.fit(x, y)
    loaded = _round_trip(model, x)
    assert loaded.flavor == "sklearn"
    assert {c.name: c.type for c in loaded.signature.inputs}["plan"] == "string"  # type: ignore[union-attr]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_sklearn_regressor_has_no_predict_proba(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LinearRegression

    x, _ = churn
    model = LinearRegression().fit(x[["tenure", "age"]], x["charges"])
    loaded = _round_trip(model, x[["tenure", "age"]])
    np.testing.assert_allclose(loaded.predict(x), model.predict(x[["tenure", "age"]]))
    assert not hasattr(loaded, "predict_proba")
    with pytest.raises(AttributeError, match=r"model m/1 \(sklearn flavor, .*LinearRegression\) has no predict_proba"):
        loaded.predict_proba(x)


def test_sklearn_fitted_on_arrays_takes_arrays_and_frames(settings: Settings, churn: Data) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = churn
    array = x.to_numpy(dtype=float)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(array, y)
    loaded = _round_trip(model, array)
    assert loaded.signature is not None
    assert loaded.signature.input_names == ["f0", "f1", "f2"]
    assert loaded.signature.input_format == "ndarray"
    np.testing.assert_array_equal(loaded.predict(array), model.predict(array))
    as_frame = pd.DataFrame(array, columns=["f0", "f1", "f2"])
    np.testing.assert_array_equal(loaded.predict(as_frame), model.predict(array))


def test_xgboost_classifier_keeps_its_wrapper(settings: Settings, churn: Data) -> None:
    from xgboost import XGBClassifier

    x, y = churn
    model = XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    loaded = _round_trip(model, x)
    assert loaded.flavor == "xgboost"
    assert type(loaded.raw) is XGBClassifier
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.manifest["libraries"]["xgboost"]


def test_xgboost_booster(settings: Settings, churn: Data) -> None:
    import xgboost as xgb

    x, y = churn
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic"}, xgb.DMatrix(x, label=y), num_boost_round=3)
    loaded = _round_trip(booster, x)
    np.testing.assert_allclose(loaded.predict(x), booster.predict(xgb.DMatrix(x)))
    assert not hasattr(loaded, "predict_proba")


def test_lightgbm_classifier(settings: Settings, churn: Data) -> None:
    from lightgbm import LGBMClassifier

    x, y = churn
    model = LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1).fit(x, y)
    loaded = _round_trip(model, x)
    assert loaded.flavor == "lightgbm"
    assert type(loaded.raw) is LGBMClassifier
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert model.booster_ is not None  # logging must not strip the caller's model


def test_lightgbm_booster(settings: Settings, churn: Data) -> None:
    import lightgbm as lgb

    x, y = churn
    params = {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(x, label=y.astype(float)), num_boost_round=3)
    loaded = _round_trip(booster, x)
    np.testing.assert_allclose(loaded.predict(x), booster.predict(x))


def test_onnx_model_from_skl2onnx(settings: Settings, churn: Data) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = churn
    array = x.to_numpy(dtype=np.float32)
    model = LogisticRegression(max_iter=2000).fit(array, y)
    proto = to_onnx(model, array[:1], target_opset=15)
    loaded = _round_trip(proto, array)
    assert loaded.flavor == "onnx"
    np.testing.assert_array_equal(loaded.predict(array), model.predict(array))
    np.testing.assert_allclose(loaded.predict_proba(array), model.predict_proba(array), atol=1e-5)
    # Integers where the signature says float are widened, then cast to the graph's float32.
    np.testing.assert_array_equal(loaded.predict(x.to_numpy()), model.predict(x.to_numpy(dtype=np.float32)))


def test_onnx_bytes_and_path_need_the_flavor_named(settings: Settings, churn: Data, tmp_path: Any) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    x, _ = churn
    array = x[["tenure", "age"]].to_numpy(dtype=np.float32)
    model = LinearRegression().fit(array, x["charges"])
    data = to_onnx(model, array[:1], target_opset=15).SerializeToString()
    path = tmp_path / "linear.onnx"
    path.write_bytes(data)
    with pytest.raises(InvalidInputError, match=r"cannot tell the flavor of a builtins\.bytes"):
        reg.log_model(data, "m")
    for given in (data, str(path)):
        loaded = _round_trip(given, array, flavor="onnx")
        np.testing.assert_allclose(loaded.predict(array), model.predict(array), rtol=1e-4)
        assert not hasattr(loaded, "predict_proba")
    with pytest.raises(InvalidInputError, match="not an ONNX model"):
        reg.log_model(b"not onnx", "m", flavor="onnx")
    with pytest.raises(InvalidInputError, match=r"ONNX file 'missing\.onnx' does not exist"):
        reg.log_model("missing.onnx", "m", flavor="onnx")


class Doubler:
    """A hand-written model with predict and predict_proba."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return (frame["tenure"] * 2).to_numpy()

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        p = (frame["tenure"] / 100).to_numpy()
        return np.column_stack([1 - p, p])


def test_pyfunc_object(settings: Settings, churn: Data) -> None:
    x, _ = churn
    loaded = _round_trip(Doubler(), x)
    assert loaded.flavor == "pyfunc"
    np.testing.assert_array_equal(loaded.predict(x), x["tenure"].to_numpy() * 2)
    np.testing.assert_allclose(loaded.predict_proba(x)[:, 1], x["tenure"].to_numpy() / 100)
    assert [(c.name, c.type) for c in loaded.signature.outputs] == [("prediction", "integer")]  # type: ignore[union-attr]


def test_pyfunc_plain_callable(settings: Settings, churn: Data) -> None:
    x, _ = churn
    offset = 0.5  # captured by value: the lambda must survive pickling without this module

    loaded = _round_trip(lambda frame: frame["charges"] + offset, x)
    assert loaded.flavor == "pyfunc"
    np.testing.assert_allclose(loaded.predict(x.to_dict("list")), x["charges"] + offset)
    assert not hasattr(loaded, "predict_proba")


def test_explicit_flavor_is_checked(settings: Settings) -> None:
    with pytest.raises(InvalidInputError, match="unknown flavor 'torch'; known flavors: onnx, xgboost"):
        reg.log_model(Doubler(), "m", flavor="torch")
    with pytest.raises(InvalidInputError, match=r"flavor 'sklearn' cannot save a .*Doubler"):
        reg.log_model(Doubler(), "m", flavor="sklearn")
    with pytest.raises(InvalidInputError, match=r"cannot tell the flavor of a builtins\.str"):
        reg.log_model("model.pkl", "m")


def test_log_model_inside_a_run_uses_it(settings: Settings, churn: Data) -> None:
    x, _ = churn
    with start_run("churn", "train") as run:
        mv = reg.log_model(Doubler(), "doubler", input_example=x[:3])
    assert mv.run_id == run.id
    assert mv.artifact_path == "models/doubler"
    paths = {r.path for r in run.stores.runs.list_artifacts(run.id, "models/doubler")}
    assert paths == {
        "models/doubler/manifest.json",
        "models/doubler/model.pkl",
        "models/doubler/input_example.parquet",  # kept for later checks (ONNX conversion)
    }


def test_log_model_without_a_run_starts_and_ends_one(settings: Settings, stores: Any) -> None:
    mv = reg.log_model(Doubler(), "doubler")
    run = stores.runs.get_run(mv.run_id)
    assert (run.experiment, run.name, run.status) == ("default", "log_model-doubler", "finished")
    assert mv.signature is None


def test_unpicklable_model_is_refused_clearly(settings: Settings) -> None:
    import threading

    class Locked:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def predict(self, data: Any) -> Any:
            return data

    with pytest.raises(InvalidInputError, match=r"cannot save the model with the pyfunc flavor \(TypeError: .*lock"):
        reg.log_model(Locked(), "locked")
    assert reg.list_models() == []


def test_failed_log_registers_nothing(settings: Settings, stores: Any) -> None:
    class Broken:
        def predict(self, frame: pd.DataFrame) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(InvalidInputError, match=r"failed to predict on input_example \(RuntimeError: boom\)"):
        reg.log_model(Broken(), "broken", input_example={"a": [1]})
    assert reg.list_models() == []
    assert (
        stores.runs.search_runs(
            [stores.runs.get_experiment("default").id], filter=None, order_by=[], max_results=10, page_token=None
        )
        .items[0]
        .status
        == "failed"
    )
