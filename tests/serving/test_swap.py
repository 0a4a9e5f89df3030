"""Hot swap: an alias moved under continuous load, /admin/reload, a failed load that keeps the old version."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.serving import ModelSpec, ServingConfig, create_app
from tests.serving.conftest import log_constant_model, metric_samples, running

ROW = {"tenure": 3, "charges": 70.5, "age": 40}


def _refuse() -> None:
    raise RuntimeError("this model cannot be unpickled")


class Unloadable:
    """Registers fine, fails when the server loads it."""

    def predict(self, data: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.zeros(len(data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse, ())


class _Client(threading.Thread):
    """Posts one row at a time until told to stop (or 3,000 requests, or 30 s); keeps every answer."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.answers: list[tuple[int, int | None, float | None]] = []

    def run(self) -> None:
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set() and len(self.answers) < 3000 and time.monotonic() < deadline:
                response = http.post("/models/toy/predict", json={"records": [ROW]})
                body = response.json()
                self.answers.append((response.status_code, body.get("version"), (body.get("predictions") or [None])[0]))


def test_alias_moved_under_load_swaps_with_zero_failures(store: Settings) -> None:
    log_constant_model(1.0, alias="champion")
    log_constant_model(2.0)
    config = ServingConfig(models=(ModelSpec("toy@champion"),), poll_interval=0.1)
    stop = threading.Event()
    with running(create_app(config)) as url:
        clients = [_Client(url, stop) for _ in range(4)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 20
        while min(len(c.answers) for c in clients) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        reg.set_alias("toy", "champion", 2)
        while time.monotonic() < deadline and not all(sum(1 for a in c.answers if a[1] == 2) >= 20 for c in clients):
            time.sleep(0.02)
        stop.set()
        for client in clients:
            client.join()
        text = httpx.get(f"{url}/metrics").text
    for client in clients:
        assert {status for status, _, _ in client.answers} == {200}
        versions = [version for _, version, _ in client.answers]
        assert versions == sorted(versions)  # 1, 1, ..., 2, 2: once on the new version, never back
        assert versions[0] == 1
        assert versions[-1] == 2
        assert all(value == float(version) for _, version, value in client.answers)
    served = {labels["version"] for labels, _ in metric_samples(text, "shipyard_requests_total")}
    assert served == {"1", "2"}
    assert [value for _, value in metric_samples(text, "shipyard_model_version")] == [2.0]


def test_admin_reload_and_failed_load(store: Settings) -> None:
    log_constant_model(1.0, alias="champion")
    log_constant_model(2.0)
    reg.log_model(
        Unloadable(),
        "toy",
        flavor="pyfunc",
        signature={
            "inputs": [
                {"name": n, "type": t} for n, t in (("tenure", "integer"), ("charges", "float"), ("age", "integer"))
            ]
        },
    )
    config = ServingConfig(models=(ModelSpec("toy@champion"),), poll_interval=0)
    with running(create_app(config)) as url, httpx.Client(base_url=url) as http:
        unchanged = http.post("/admin/reload").json()
        assert unchanged["swapped"] == []
        reg.set_alias("toy", "champion", 2)
        assert http.post("/models/toy/predict", json={"records": [ROW]}).json()["version"] == 1  # not watched
        moved = http.post("/admin/reload")
        assert moved.status_code == 200
        assert moved.json()["swapped"] == ["toy@champion"]
        assert http.post("/models/toy/predict", json={"records": [ROW]}).json()["version"] == 2

        reg.set_alias("toy", "champion", 3)
        failed = http.post("/admin/reload?model=toy")
        assert failed.status_code == 500
        assert "cannot be unpickled" in failed.json()["error"]
        answer = http.post("/models/toy/predict", json={"records": [ROW]})
        assert answer.status_code == 200
        assert answer.json() == {"model": "toy", "version": 2, "predictions": [2.0]}  # the old version serves on
        status = http.get("/admin/models").json()["toy"][0]
        assert status["version"] == 2
        assert "cannot be unpickled" in status["last_error"]
        text = http.get("/metrics").text
        assert [v for _, v in metric_samples(text, "shipyard_model_load_failures_total")] == [1.0]
        assert http.post("/admin/reload?model=nope").status_code == 404
