"""The Open Inference Protocol v2 routes (through tritonclient, binary and JSON) and the plain JSON route."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import orjson
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


def test_predict_body_is_a_request_schema_in_openapi(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        spec = http.get("/openapi.json").json()
    route = spec["paths"]["/models/{name}/predict"]["post"]
    assert '"records"' in route["description"]
    schema = route["requestBody"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rpartition("/")[2]
    body = spec["components"]["schemas"][name]
    assert {"records", "columns", "data"} <= body["properties"].keys()
    assert body["properties"]["records"]["anyOf"][0]["type"] == "array"


def test_docs_work_offline(url: str) -> None:
    import re

    with httpx.Client(base_url=url) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert "http://" not in page.text
        assert "https://" not in page.text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert {a.rpartition("/")[2] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
        for asset in assets:
            answer = http.get(asset)
            assert answer.status_code == 200, asset
            assert answer.content, asset
        assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
        assert '"validatorUrl": null' in page.text  # Swagger UI's default validator is an online service


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


REFERENCE_TENSORS = [
    ("s", "BYTES", np.array(["a", "", "ünï"], dtype=object)),
    ("f", "FP32", np.array([[1.5, -2.0], [0.25, 1e30]], dtype=np.float32)),
    ("i", "INT64", np.array([-(2**62), 0, 7], dtype=np.int64)),
    ("b", "BOOL", np.array([True, False, True])),
    ("h", "FP16", np.array([0.5, -1.0], dtype=np.float16)),
]


@pytest.mark.parametrize(("name", "datatype", "array"), REFERENCE_TENSORS, ids=[t[1] for t in REFERENCE_TENSORS])
def test_binary_tensors_match_tritonclient(name: str, datatype: str, array: np.ndarray[Any, Any]) -> None:
    import tritonclient.http as triton

    from shipyard.serving import protocol_v2 as v2
    from shipyard.serving._binary import decode_tensor, encode_tensor

    # what tritonclient sends for this tensor: the request body's bytes after the JSON header
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=True)
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    reference = bytes(body[json_size:])
    assert encode_tensor(array, datatype) == reference
    decoded = decode_tensor(name, datatype, list(array.shape), reference)
    expected = np.array([v.encode() for v in array], dtype=object) if datatype == "BYTES" else array
    np.testing.assert_array_equal(decoded, expected)
    # and tritonclient reads a response the server would send with this output in binary
    header, chunks = v2.infer_response(
        model="m", version=1, request_id="r", tensors=[(name, array)], requested=None, binary_all=True
    )
    head = orjson.dumps(header)
    result = triton.InferResult.from_response_body(b"".join([head, *chunks]), header_length=len(head))
    np.testing.assert_array_equal(result.as_numpy(name), expected)


@pytest.mark.parametrize(
    "shape",
    [[2**40, 2**40], [0, 2**62], [2**63], [-1], [1.5], "3", [1] * 40],
    ids=["product", "zero-and-huge", "over-int64", "negative", "float", "not-a-list", "too-many-dims"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_v2_refuses_unusable_shapes(url: str, shape: Any, binary: bool) -> None:
    item: dict[str, Any] = {"name": "tenure", "shape": shape, "datatype": "INT64"}
    if binary:
        item["parameters"] = {"binary_data_size": 8}
    else:
        item["data"] = [3]
    header = orjson.dumps({"inputs": [item]})
    content = header + (np.array([3], dtype="<i8").tobytes() if binary else b"")
    headers = {"Inference-Header-Content-Length": str(len(header))} if binary else {}
    with httpx.Client(base_url=url) as http:
        answer = http.post("/v2/models/churn/infer", content=content, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "input 'tenure'" in answer.json()["error"]
    assert "shape" in answer.json()["error"]


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
