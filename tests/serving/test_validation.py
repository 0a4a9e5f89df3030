"""Every validation error against a real server: a clear body naming each field, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.serving import ModelSpec, ServingConfig, create_app
from tests.serving.conftest import log_constant_model, running

GOOD = {"tenure": 3, "charges": 70.5, "age": 40}


@pytest.fixture(scope="module")
def http(module_store: Settings) -> Iterator[httpx.Client]:
    """A client of a server for toy@champion (tenure: integer, charges: float, age: integer), 4 KiB body limit."""
    log_constant_model(1.0, alias="champion")
    config = ServingConfig(models=(ModelSpec("toy@champion"),), poll_interval=0, body_limit=4096)
    with running(create_app(config)) as url, httpx.Client(base_url=url) as client:
        yield client


def _v2(columns: dict[str, tuple[str, list[Any]]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}
            for name, (datatype, data) in columns.items()
        ]
    }


def _problems(response: httpx.Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "problems"}
    for problem in body["problems"]:
        assert problem in body["error"]
    return list(body["problems"])


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"tenure": 3, "charges": 70.5}, ["missing column 'age' (integer)"]),
        ({**GOOD, "plan": "gold"}, ["unexpected column 'plan'; the model takes: tenure, charges, age"]),
        ({**GOOD, "charges": "high"}, ["column 'charges' expected float, got string"]),
        ({**GOOD, "tenure": 2.5}, ["column 'tenure' expected integer, got float"]),
        ({**GOOD, "age": True}, ["column 'age' expected integer, got boolean"]),
        ({"tenure": "x", "plan": 1}, None),  # several problems at once
    ],
    ids=["missing", "extra", "mistyped", "fraction-for-integer", "bool-for-integer", "several"],
)
def test_plain_route_names_each_field(http: httpx.Client, record: dict[str, Any], expected: list[str] | None) -> None:
    problems = _problems(http.post("/models/toy/predict", json={"records": [record]}), 422)
    if expected is not None:
        assert problems == expected
    else:
        assert len(problems) == 4  # tenure mistyped, charges and age missing, plan unexpected
        assert any("'plan'" in p for p in problems)


def test_v2_route_answers_400_naming_fields(http: httpx.Client) -> None:
    body = _v2({"tenure": ("INT64", [1]), "charges": ("BYTES", ["x"]), "zip": ("INT64", [7])})
    problems = _problems(http.post("/v2/models/toy/infer", json=body), 400)
    assert problems == [
        "column 'charges' expected float, got string",
        "missing column 'age' (integer)",
        "unexpected column 'zip'; the model takes: tenure, charges, age",
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"inputs": []}, "'inputs'"),
        ({"inputs": [{"name": "tenure", "shape": [2], "datatype": "INT64", "data": [1]}]}, "holds 2 elements"),
        ({"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT64", "data": ["a"]}]}, "declared INT64"),
        ({"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT3", "data": [1]}]}, "'datatype'"),
        ({"inputs": [{"name": "tenure", "shape": "1", "datatype": "INT64", "data": [1]}]}, "'shape'"),
        ({"inputs": [{"shape": [1], "datatype": "INT64", "data": [1]}]}, "'name'"),
        ({"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT64"}]}, "neither 'data'"),
    ],
    ids=["no-inputs", "shape", "datatype-vs-data", "unknown-datatype", "bad-shape", "no-name", "no-data"],
)
def test_malformed_v2_requests(http: httpx.Client, body: dict[str, Any], fragment: str) -> None:
    response = http.post("/v2/models/toy/infer", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_lengths_and_shapes(http: httpx.Client) -> None:
    body = _v2({"tenure": ("INT64", [1, 2]), "charges": ("FP64", [1.0, 2.0]), "age": ("INT64", [3])})
    assert "different lengths" in _problems(http.post("/v2/models/toy/infer", json=body), 400)[0]
    ragged = http.post("/models/toy/predict", json={"columns": ["tenure", "charges", "age"], "data": [[1, 2.0]]})
    assert "rows must have 3 values" in _problems(ragged, 422)[0]
    partial = http.post("/models/toy/predict", json={"records": [GOOD, {"tenure": 1, "charges": 2.0}]})
    assert _problems(partial, 422) == ["column 'age' is missing from records 1"]


@pytest.mark.parametrize(
    ("content", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, '{"records"'),
        (b'{"records": [], "x": 1}', 400, "unknown field"),
        (b'{"records": []}', 400, "non-empty list"),
        (b'{"data": "rows"}', 400, "'data' must be"),
        (b'{"records": [{"tenure": 1}]}' + b" " * 5000, 413, "over the limit"),
    ],
    ids=["bad-json", "not-object", "unknown-field", "empty", "bad-data", "too-large"],
)
def test_bad_bodies(http: httpx.Client, content: bytes, status: int, fragment: str) -> None:
    response = http.post("/models/toy/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_streamed_body_over_the_limit(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    response = http.post("/models/toy/predict", content=chunks())  # chunked: no Content-Length
    assert response.status_code == 413


def test_binary_header_errors(http: httpx.Client) -> None:
    header = (
        b'{"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT64", "parameters": {"binary_data_size": 8}}]}'
    )
    short = http.post(
        "/v2/models/toy/infer", content=header + b"\x01", headers={"inference-header-content-length": str(len(header))}
    )
    assert short.status_code == 400
    assert "binary_data_size" in short.json()["error"]
    wrong = http.post("/v2/models/toy/infer", content=header, headers={"inference-header-content-length": "9999"})
    assert wrong.status_code == 400
    assert "Inference-Header-Content-Length" in wrong.json()["error"]


def test_nulls_are_missing_floats_not_errors(http: httpx.Client) -> None:
    response = http.post("/models/toy/predict", json={"records": [{**GOOD, "charges": None}]})
    assert response.status_code == 200, response.text
    nulls = http.post("/models/toy/predict", json={"records": [{**GOOD, "tenure": None}]})
    assert _problems(nulls, 422) == ["column 'tenure' expected integer, got missing"]
