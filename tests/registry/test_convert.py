"""ONNX conversion: scikit-learn and LightGBM models converted, checked, registered, served by onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, ModelFailedError
from shipyard.registry.convert import convert_model
from shipyard.serving import ModelSpec, ServingConfig, create_app
from tests.serving.conftest import running

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

Data = tuple[pd.DataFrame, np.ndarray[Any, Any]]
TOLERANCE = 1e-5
SCRIPT = Path(sys.executable).parent / "shipyard"  # the installed console script


def _within(expected: Any, got: Any) -> None:
    want, have = np.asarray(expected, dtype=float), np.asarray(got, dtype=float)
    assert np.all(np.abs(have - want) <= TOLERANCE * np.maximum(1.0, np.abs(want)))


def _matches_and_is_served(name: str, original: Any, rows: pd.DataFrame) -> None:
    """The latest ``name`` runs on onnxruntime, answers as ``original`` does, in process and from a server."""
    import onnxruntime as ort

    onnx_model = reg.load_model(name)
    assert isinstance(onnx_model.raw, ort.InferenceSession)
    np.testing.assert_array_equal(onnx_model.predict(rows), original.predict(rows))
    _within(original.predict_proba(rows), onnx_model.predict_proba(rows))
    metadata, predictions = _serve_and_predict(name, rows)
    assert metadata["platform"] == "shipyard-onnx"
    assert predictions == original.predict(rows).tolist()


def _serve_and_predict(name: str, rows: pd.DataFrame) -> tuple[dict[str, Any], list[Any]]:
    """The v2 metadata of ``name@latest`` and its predictions for ``rows``, from a real uvicorn on loopback."""
    with running(create_app(ServingConfig(models=(ModelSpec(name),), poll_interval=0))) as base:
        metadata = httpx.get(f"{base}/v2/models/{name}", timeout=10).json()
        answer = httpx.post(f"{base}/models/{name}/predict", json={"records": rows.to_dict("records")}, timeout=10)
    assert answer.status_code == 200, answer.text
    return metadata, answer.json()["predictions"]


def test_sklearn_pipeline_converts_and_is_served_by_onnxruntime(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, label = churn
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, label)
    source = reg.log_model(pipeline, "churn", input_example=frame.head(8))
    converted = convert_model("churn/1", tolerance=TOLERANCE)

    assert converted.ref == "churn-onnx/1"
    assert converted.flavor == "onnx"
    assert converted.signature == source.signature
    assert converted.tags["source_model"] == "churn"
    assert converted.tags["source_version"] == "1"
    assert converted.tags["converter"].startswith("skl2onnx ")
    assert float(converted.tags["max_difference"]) <= TOLERANCE
    _matches_and_is_served("churn-onnx", pipeline, frame.tail(30))


def test_the_conversion_keeps_the_source_feature_service(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, label = churn
    reg.log_model(LogisticRegression().fit(frame, label), "scored", input_example=frame.head(8))
    reg.set_model_tags(
        "scored", {"shipyard.feature_service": "churn_features", "shipyard.feature_service_version": "2"}, version=1
    )
    converted = convert_model("scored/1", tolerance=TOLERANCE)
    assert reg.load_model(converted.ref).feature_service == reg.load_model("scored/1").feature_service
    assert reg.load_model(converted.ref).feature_service is not None


def test_column_transformer_with_a_string_column_converts(settings: Settings, churn: Data) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, label = churn
    frame = frame.assign(plan=np.where(frame["tenure"] > 30, "annual", "monthly"))
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["tenure", "charges", "age"]), ("cat", OneHotEncoder(), ["plan"])]
    )
    pipeline = Pipeline([("columns", columns), ("forest", RandomForestClassifier(n_estimators=5, random_state=0))])
    pipeline.fit(frame, label)
    reg.log_model(pipeline, "plans", input_example=frame.head(10))
    converted = convert_model("plans", tolerance=TOLERANCE)
    onnx_model = reg.load_model(converted.ref)
    np.testing.assert_array_equal(onnx_model.predict(frame), pipeline.predict(frame))
    _within(pipeline.predict_proba(frame), onnx_model.predict_proba(frame))


def test_lightgbm_converts_and_is_served_by_onnxruntime(settings: Settings, churn: Data) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    pytest.importorskip("onnxmltools")

    frame, label = churn
    model = lightgbm.LGBMClassifier(n_estimators=15, min_child_samples=5, verbose=-1).fit(frame, label)
    reg.log_model(model, "gbm", input_example=frame.head(8))
    reg.set_alias("gbm", "champion", 1)
    converted = convert_model("gbm@champion", tolerance=TOLERANCE)

    assert (converted.ref, converted.tags["source_version"]) == ("gbm-onnx/1", "1")
    assert converted.tags["converter"].startswith("onnxmltools ")
    _matches_and_is_served("gbm-onnx", model, frame.tail(30))


def test_lightgbm_regressor_is_checked_relative_to_its_scale(settings: Settings, churn: Data) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    pytest.importorskip("onnxmltools")

    frame, _ = churn
    target = frame["charges"] * 3 + frame["age"]  # outputs in the hundreds: float32 rounding is ~1e-5 absolute
    model = lightgbm.LGBMRegressor(n_estimators=10, min_child_samples=5, verbose=-1).fit(frame, target)
    reg.log_model(model, "spend", input_example=frame.head(8))
    converted = convert_model("spend/1")
    _within(model.predict(frame), reg.load_model(converted.ref).predict(frame))


def test_a_mismatch_beyond_the_tolerance_registers_nothing(settings: Settings, churn: Data) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    pytest.importorskip("onnxmltools")

    frame, label = churn
    model = lightgbm.LGBMClassifier(n_estimators=15, min_child_samples=5, verbose=-1).fit(frame, label)
    reg.log_model(model, "gbm", input_example=frame.head(8))
    # float32 trees cannot give probabilities bit-equal to LightGBM's float64 ones
    with pytest.raises(ModelFailedError, match=r"does not match the original.*tolerance 0"):
        convert_model("gbm/1", tolerance=0.0)
    assert [m.name for m in reg.list_models()] == ["gbm"]


def test_a_version_without_example_needs_one(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LinearRegression

    frame, label = churn
    model = LinearRegression().fit(frame, label)
    reg.log_model(model, "lin")
    with pytest.raises(InvalidInputError, match="no stored input example") as caught:
        convert_model("lin/1")
    assert caught.value.field == "example"
    converted = convert_model("lin/1", example=frame.head(5))
    _within(model.predict(frame), reg.load_model(converted.ref).predict(frame))


class Doubler:
    """A custom model: nothing converts it."""

    def predict(self, data: pd.DataFrame) -> Any:
        return data["tenure"] * 2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli_converts_and_refuses_what_cannot_convert(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading

    frame, label = churn
    reg.log_model(LogisticRegression().fit(frame, label), "churn", input_example=frame.head(5))
    reg.log_model(Doubler(), "custom", input_example=frame.head(5))
    reg.log_model(LabelSpreading().fit(frame.to_numpy(float), label), "spread", input_example=frame.to_numpy(float)[:5])

    mismatch = _cli("models", "convert", "churn/1", "--tolerance", "0")  # float32 cannot be bit-equal
    assert mismatch.returncode == 1, mismatch.stderr
    assert mismatch.stderr.count("\n") == 1
    assert "does not match the original" in mismatch.stderr
    assert "nothing registered" in mismatch.stderr
    done = _cli("models", "convert", "churn/1", "--to", "onnx", "--tolerance", "1e-5")
    assert done.returncode == 0, done.stderr
    assert "registered churn-onnx/1" in done.stdout

    for ref, expected in (
        ("custom/1", "has the pyfunc flavor"),
        ("spread/1", "cannot convert to ONNX"),
    ):
        refused = _cli("models", "convert", ref, "--to", "onnx")
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith("error: ")
        assert expected in lines[0]
        assert "Traceback" not in refused.stderr
    wrong_format = _cli("models", "convert", "churn/1", "--to", "tflite")
    assert wrong_format.returncode == 2
    assert "--to must be onnx" in wrong_format.stderr
    assert sorted(m.name for m in reg.list_models()) == ["churn", "churn-onnx", "custom", "spread"]
