"""Canary split, shadow mirroring, and what each arm records: metrics, access logs, prediction logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from shipyard.config import Settings
from shipyard.serving import ModelSpec, ServingConfig, create_app
from shipyard.store import open_stores
from tests.serving.conftest import log_constant_model, metric_samples, running

ROW = {"tenure": 3, "charges": 70.5, "age": 40}


def test_canary_gets_its_share(store: Settings) -> None:
    log_constant_model(1.0, alias="champion")
    log_constant_model(2.0, alias="challenger")
    spec = ModelSpec("toy@champion", canary="toy@challenger", canary_percent=30)
    n = 400
    with running(create_app(ServingConfig(models=(spec,), poll_interval=0))) as url, httpx.Client(base_url=url) as http:
        answers = asyncio.run(_many(url, n))
        pinned = http.post("/v2/models/toy/versions/2/infer", json=_v2_row()).json()
        text = http.get("/metrics").text
    canary = sum(1 for a in answers if a["version"] == 2)
    assert all(a["predictions"] == [float(a["version"])] for a in answers)
    assert 0.2 < canary / n < 0.4  # 30% ± 4.4 standard deviations
    assert pinned["model_version"] == "2"  # a request naming a version goes to the arm serving it
    counts = {
        (labels["arm"], labels["route"]): value
        for labels, value in metric_samples(text, "shipyard_requests_total")
        if labels["status"] == "200"
    }
    assert counts[("canary", "json")] == canary
    assert counts[("primary", "json")] == n - canary


async def _many(url: str, n: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        answers = []
        for _ in range(n // 20):  # 20 at a time: quick, and batched as real traffic would be
            chunk = [client.post("/models/toy/predict", json={"records": [ROW]}) for _ in range(20)]
            answers += [r.json() for r in await asyncio.gather(*chunk)]
        return answers


def _v2_row() -> dict[str, object]:
    types = {"tenure": "INT64", "charges": "FP64", "age": "INT64"}
    return {"inputs": [{"name": k, "shape": [1], "datatype": types[k], "data": [v]} for k, v in ROW.items()]}


def test_canary_and_shadow_must_be_the_same_model(store: Settings) -> None:
    from shipyard.errors import InvalidInputError

    log_constant_model(1.0, alias="champion")
    log_constant_model(1.0, name="other", alias="champion")
    with pytest.raises(InvalidInputError, match="another version of 'toy'"):
        create_app(ServingConfig(models=(ModelSpec("toy@champion", shadow="other@champion"),)))


def test_shadow_answers_are_logged_never_returned(store: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shipyard.serving.access")
    log_constant_model(1.0, alias="champion")
    log_constant_model(999.0, alias="challenger")
    spec = ModelSpec("toy@champion", shadow="toy@challenger")
    config = ServingConfig(models=(spec,), poll_interval=0, log_flush_seconds=0.2)
    n = 50
    with running(create_app(config)) as url, httpx.Client(base_url=url) as http:
        answers = [
            http.post("/models/toy/predict", json={"records": [ROW]}, headers={"x-request-id": f"req-{i}"})
            for i in range(n)
        ]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = http.get("/metrics").text
            shadow = [v for labels, v in metric_samples(text, "shipyard_requests_total") if labels["arm"] == "shadow"]
            if sum(shadow) >= n:
                break
            time.sleep(0.05)
    for i, answer in enumerate(answers):
        assert answer.json() == {"model": "toy", "version": 1, "predictions": [1.0]}
        assert "999" not in answer.text
        assert answer.headers["x-request-id"] == f"req-{i}"
    assert sum(shadow) == n
    values = {labels["arm"]: value for labels, value in metric_samples(text, "shipyard_prediction_value_sum")}
    assert values == {"primary": 1.0 * n, "shadow": 999.0 * n}

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "shipyard.serving.access"]
    predicted = [line for line in lines if line["path"] == "/models/toy/predict"]
    assert [line["request_id"] for line in predicted] == [f"req-{i}" for i in range(n)]
    assert {(line["status"], line["model"], line["version"], line["arm"]) for line in predicted} == {
        (200, "toy", 1, "primary")
    }

    logs = _prediction_logs(store)
    assert set(logs) == {"toy@champion", "toy@challenger"}
    primary, mirrored = logs["toy@champion"], logs["toy@challenger"]
    assert len(primary) == len(mirrored) == n
    assert set(primary["prediction"]) == {1.0}
    assert set(mirrored["prediction"]) == {999.0}
    assert set(primary["_request_id"]) == set(mirrored["_request_id"]) == {f"req-{i}" for i in range(n)}
    assert list(primary.columns[:6]) == ["_request_id", "_timestamp", "_model", "_version", "_arm", "_latency_ms"]
    assert list(primary.columns[6:]) == ["tenure", "charges", "age", "prediction"]
    assert set(mirrored["_arm"]) == {"shadow"}
    assert (primary["_latency_ms"] > 0).all()


def _prediction_logs(settings: Settings) -> dict[str, object]:
    import pandas as pd

    stores = open_stores(settings)
    experiment = stores.runs.get_experiment("serving")
    runs = stores.runs.search_runs([experiment.id], filter=None, order_by=[], max_results=100, page_token=None).items
    frames = {}
    for run in runs:
        assert run.status == "finished"
        refs = stores.runs.list_artifacts(run.id, "predictions")
        assert refs
        assert all(r.path.startswith("predictions/date=") and r.path.endswith(".parquet") for r in refs)
        tables = [pq.read_table(io.BytesIO(stores.artifacts.get_bytes(r.digest))).to_pandas() for r in refs]
        frames[run.name] = pd.concat(tables, ignore_index=True)
    return frames
