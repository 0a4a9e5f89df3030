"""The Open Inference Protocol v2 routes (through tritonclient, binary and JSON) and the plain JSON route."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.serving import ModelSpec, ServingConfig, create_app
from tests.serving.conftest import churn_frame, running


@pytest.fixture(scope="module")
def classifier(module_store: Settings) -> Any:
    """A logistic regression registered as churn@champion; returns the fitted model."""
    from sklearn.linear_model import LogisticRegression

    import shipyard.registry as reg

    frame, label = churn_frame()
    model = LogisticRegression(max_iter=500).fit(frame, label)
    version = reg.log_model(model, "churn", input_example=frame.head(5)).version
    reg.set_alias("churn", "champion", version)
    return model


@pytest.fixture(scope="module")
def url(classifier: Any) -> Any:
    """A running server for churn@champion."""
    with running(create_app(ServingConfig(models=(ModelSpec("churn@champion"),), poll_interval=0))) as base:
        yield base


def _inputs(frame: pd.DataFrame, *, binary: bool) -> list[Any]:
    import tritonclient.http as triton

    inputs = []
    for name, datatype, dtype in (
        ("tenure", "INT64", np.int64),
        ("charges", "FP32", np.float32),
        ("age", "INT64", np.int64),
    ):
        tensor = triton.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(frame[name].to_numpy(dtype=dtype), binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer(url: str, classifier: Any, churn: tuple[pd.DataFrame, Any], binary: bool) -> None:
    import tritonclient.http as triton

    frame = churn[0].head(7)
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("churn")
        metadata = client.get_model_metadata("churn")
        assert [i["name"] for i in metadata["inputs"]] == ["tenure", "charges", "age"]
        outputs = [triton.InferRequestedOutput("prediction", binary_data=binary)]
        result = client.infer("churn", _inputs(frame, binary=binary), outputs=outputs, request_id="r-1")
        expected = classifier.predict(frame.astype({"charges": np.float32}).astype({"charges": float}))
        np.testing.assert_array_equal(result.as_numpy("prediction"), expected)
        assert result.get_response()["model_version"] == "1"
        assert result.get_response()["id"] == "r-1"
        # no outputs named: tritonclient asks for every output in binary
        whole = client.infer("churn", _inputs(frame, binary=binary))
        np.testing.assert_array_equal(whole.as_numpy("prediction"), expected)
    finally:
        client.close()


def test_tritonclient_reports_errors(url: str, churn: tuple[pd.DataFrame, Any]) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url.removeprefix("http://"))
    try:
        with pytest.raises(InferenceServerException, match="missing column 'age'"):
            client.infer("churn", _inputs(churn[0].head(2), binary=True)[:2])
        assert not client.is_model_ready("nope")
    finally:
        client.close()


def test_v2_json_routes(url: str, churn: tuple[pd.DataFrame, Any], classifier: Any) -> None:
    frame = churn[0].head(3)
    body = {
        "id": "abc",
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": name, "shape": [3, 1], "datatype": dtype, "data": frame[name].tolist()}
            for name, dtype in (("tenure", "INT64"), ("charges", "FP64"), ("age", "INT64"))
        ],
    }
    with httpx.Client(base_url=url) as http:
        assert http.get("/v2").json()["extensions"] == ["binary_tensor_data"]
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/models/churn/versions/1").json()["versions"] == ["1"]
        assert http.get("/v2/models/churn/versions/1/ready").status_code == 200
        answer = http.post("/v2/models/churn/versions/1/infer", json=body)
        assert answer.status_code == 200, answer.text
        out = answer.json()
        assert out["id"] == "abc"
        assert out["outputs"][0]["data"] == classifier.predict(frame).tolist()
        missing = http.post("/v2/models/churn/versions/9/infer", json=body)
        assert missing.status_code == 404
        assert "version 9" in missing.json()["error"]


def test_v2_positional_tensor(url: str, churn: tuple[pd.DataFrame, Any], classifier: Any) -> None:
    frame = churn[0].head(4)
    body = {
        "inputs": [{"name": "input-0", "shape": [4, 3], "datatype": "FP64", "data": frame.to_numpy().tolist()}],
    }
    with httpx.Client(base_url=url) as http:
        answer = http.post("/v2/models/churn/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == classifier.predict(frame).tolist()


def test_plain_json_route(url: str, churn: tuple[pd.DataFrame, Any], classifier: Any) -> None:
    frame = churn[0].head(5)
    expected = classifier.predict(frame).tolist()
    with httpx.Client(base_url=url) as http:
        records = http.post("/models/churn/predict", json={"records": frame.to_dict(orient="records")})
        split = http.post("/models/churn/predict", json={"columns": list(frame), "data": frame.to_numpy().tolist()})
        docs = http.get("/docs")
        spec = http.get("/openapi.json").json()
    assert records.json() == {"model": "churn", "version": 1, "predictions": expected}
    assert split.json()["predictions"] == expected
    assert docs.status_code == 200
    assert "InferenceRequest" in spec["components"]["schemas"]
    assert "/v2/models/{name}/infer" in spec["paths"]


def test_unknown_route_and_model(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        route = http.get("/nowhere")
        model = http.post("/models/nope/predict", json={"records": [{"a": 1}]})
        meta = http.get("/v2/models/nope")
    assert route.status_code == 404
    assert "error" in route.json()
    assert model.status_code == 404
    assert "served models: churn" in model.json()["error"]
    assert meta.status_code == 404


def test_binary_bytes_round_trip() -> None:
    from shipyard.serving._binary import decode_tensor, encode_tensor

    values = np.array(["a", "", "ünï"], dtype=object)
    decoded = decode_tensor("s", "BYTES", [3], encode_tensor(values, "BYTES"))
    assert [v.decode() for v in decoded] == ["a", "", "ünï"]
    floats = np.array([1.5, -2.0], dtype=np.float32)
    np.testing.assert_array_equal(decode_tensor("f", "FP32", [2], encode_tensor(floats, "FP32")), floats)


def test_string_columns_through_v2_bytes(store: Settings) -> None:
    import tritonclient.http as triton

    import shipyard.registry as reg

    def shout(frame: pd.DataFrame) -> list[str]:
        return [s.upper() for s in frame["word"]]

    reg.log_model(shout, "shout", signature={"inputs": [{"name": "word", "type": "string"}]}, flavor="pyfunc")
    config = ServingConfig(models=(ModelSpec("shout/1"),), poll_interval=0)
    with running(create_app(config)) as base:
        client = triton.InferenceServerClient(base.removeprefix("http://"))
        try:
            tensor = triton.InferInput("word", [2], "BYTES")
            tensor.set_data_from_numpy(np.array([b"hi", b"yo"], dtype=object))
            result = client.infer("shout", [tensor])
            assert [v.decode() for v in result.as_numpy("prediction")] == ["HI", "YO"]
        finally:
            client.close()
