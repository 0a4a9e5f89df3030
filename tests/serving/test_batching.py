"""Dynamic batching and backpressure against a real server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.serving import BatchingConfig, ModelSpec, ServingConfig, create_app
from tests.serving.conftest import SlowModel, metric_samples, running

ROW = {"tenure": 3, "charges": 70.5, "age": 40}
SIGNATURE = {
    "inputs": [
        {"name": "tenure", "type": "integer"},
        {"name": "charges", "type": "float"},
        {"name": "age", "type": "integer"},
    ]
}


def _slow_server(seconds: float, batching: BatchingConfig) -> Any:
    reg.log_model(SlowModel(seconds), "slow", signature=SIGNATURE, flavor="pyfunc")
    return running(create_app(ServingConfig(models=(ModelSpec("slow/1", batching=batching),), poll_interval=0)))


async def _burst(url: str, count: int, *, first_alone: bool) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count + 1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one() -> httpx.Response:
            return await client.post("/models/slow/predict", json={"records": [ROW]})

        first = asyncio.create_task(one()) if first_alone else None
        if first is not None:
            await asyncio.sleep(0.1)  # the first request is being computed: the rest queue behind it
        rest = await asyncio.gather(*(one() for _ in range(count)))
        return ([await first] if first is not None else []) + list(rest)


@pytest.fixture
def coalescing(store: Settings) -> Iterator[str]:
    """A model taking 0.4 s per call, batching up to 64 rows."""
    with _slow_server(0.4, BatchingConfig(max_batch_size=64, max_delay_ms=50)) as url:
        yield url


def test_concurrent_requests_share_one_model_call(coalescing: str) -> None:
    responses = asyncio.run(_burst(coalescing, 8, first_alone=True))
    assert [r.status_code for r in responses] == [200] * 9
    # SlowModel predicts the number of rows it was called with: the first ran alone, the 8 others together
    assert responses[0].json()["predictions"] == [1.0]
    assert {r.json()["predictions"][0] for r in responses[1:]} == {8.0}
    text = httpx.get(f"{coalescing}/metrics").text
    sizes = {labels["le"]: value for labels, value in metric_samples(text, "shipyard_batch_requests_bucket")}
    assert sizes["1.0"] == 1  # one call served a single request (the lone first one, run at once)
    assert sizes["8.0"] == 2  # and one call served the eight that waited
    assert [value for _, value in metric_samples(text, "shipyard_batch_rows_count")] == [2]


def test_batching_off_runs_requests_one_by_one(store: Settings) -> None:
    with _slow_server(0.05, BatchingConfig(enabled=False)) as url:
        responses = asyncio.run(_burst(url, 5, first_alone=True))
    assert {r.json()["predictions"][0] for r in responses} == {1.0}


def test_full_queue_answers_503_with_retry_after_and_stays_bounded(store: Settings) -> None:
    config = BatchingConfig(enabled=False, max_queue=4)
    reg.log_model(SlowModel(0.2), "slow", signature=SIGNATURE, flavor="pyfunc")
    app = create_app(ServingConfig(models=(ModelSpec("slow/1", batching=config),), poll_interval=0))
    depths: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the queue is the server's only per-request memory; sample its length throughout
        arm = app.state.serving.deployments["slow"].primary
        while not done.wait(0.005):
            depths.append(arm.slot.batcher.depth)

    with running(app) as url:
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            responses = []
            for _ in range(3):  # three waves of 40 concurrent clients against a model that does 5 calls/s
                responses += asyncio.run(_burst(url, 40, first_alone=False))
        finally:
            done.set()
            watcher.join()
        text = httpx.get(f"{url}/metrics").text
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 503]
    assert set(statuses) == {200, 503}
    assert max(depths) == config.max_queue  # full, and never more than full
    for response in refused:
        assert response.headers["retry-after"] == "1"
        assert "overloaded" in response.json()["error"]
    counted = {labels["status"]: value for labels, value in metric_samples(text, "shipyard_requests_total")}
    assert counted["503"] == len(refused)
    assert counted["200"] == statuses.count(200)
    assert all(value == 0 for _, value in metric_samples(text, "shipyard_queue_depth"))
