"""Serving tests: a SQLite store in tmp_path, small models, a real uvicorn server on a loopback port."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.store import close_stores
from shipyard.testing import free_port, sqlite_settings

FEATURES = ["tenure", "charges", "age"]


@contextlib.contextmanager
def _store_in(folder: Path) -> Iterator[Settings]:
    settings = sqlite_settings(folder, heartbeat_interval=0.5, heartbeat_timeout=30.0, flush_interval=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPYARD_STORE", settings.store_uri)
        patch.setenv("SHIPYARD_ARTIFACTS", settings.artifact_uri)
        patch.setenv("SHIPYARD_HEARTBEAT_INTERVAL", "0.5")
        patch.chdir(folder)
        yield settings
    close_stores(settings)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Settings]:
    """An embedded store in tmp_path, exported to the environment as a user's shell would."""
    with _store_in(tmp_path) as settings:
        yield settings


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The same, shared by a module's tests (for servers that many read-only tests query)."""
    with _store_in(tmp_path_factory.mktemp("store")) as settings:
        yield settings


def churn_frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """``tenure`` (int), ``charges`` (float), ``age`` (int) and a 0/1 label depending on them."""
    rng = np.random.default_rng(7)
    n = 60
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 60, n),
            "charges": rng.normal(70.0, 20.0, n).round(2),
            "age": rng.integers(18, 80, n),
        }
    )
    label = ((frame["charges"] - 70) / 20 - (frame["tenure"] - 30) / 30 > 0).astype(int)
    return frame, label.to_numpy()


def log_constant_model(value: float, *, name: str = "toy", alias: str | None = None) -> int:
    """Register a model that always predicts ``value``; returns its version (aliased when ``alias`` is given)."""
    from sklearn.dummy import DummyRegressor

    import shipyard.registry as reg

    frame, label = churn_frame()
    model = DummyRegressor(strategy="constant", constant=value).fit(frame, label)
    version = reg.log_model(model, name, input_example=frame.head(5)).version
    if alias is not None:
        reg.set_alias(name, alias, version)
    return version


@pytest.fixture
def churn() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """The churn-like training frame and labels."""
    return churn_frame()


@pytest.fixture
def log_constant(store: Settings) -> Callable[..., int]:
    """:func:`log_constant_model` against the test's own store."""
    return log_constant_model


class SlowModel:
    """Sleeps ``seconds`` per call, then predicts the number of rows it was called with, for every row."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, data: pd.DataFrame) -> np.ndarray[Any, Any]:
        time.sleep(self.seconds)
        return np.full(len(data), float(len(data)))


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called ``name`` in a Prometheus exposition, with its labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
