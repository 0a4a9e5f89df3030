"""Monitoring tests: prediction logs written through serving's own PredictionLog, at chosen times."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.serving.batcher import AnsweredBatch
from shipyard.serving.prediction_log import PredictionLog, open_deployment_run
from shipyard.serving.validation import Columns
from shipyard.store import Stores


def write_log(
    stores: Stores,
    *,
    model: str,
    inputs: Mapping[str, np.ndarray],
    outputs: np.ndarray,
    at: float,
    arm: str = "primary",
    version: int = 1,
    prefix: str = "r",
    run_id: str | None = None,
) -> tuple[str, list[str]]:
    """Log one row per request as serving does; returns the arm's run id and the request ids."""
    if run_id is None:
        run_id = open_deployment_run(stores, ref=f"{model}@{arm}", model=model, arm=arm, version=version)
    log = PredictionLog(stores, run_id=run_id, model=model, arm=arm, flush_seconds=3600)
    log.start()
    rows = len(outputs)
    ids = [f"{prefix}{i}" for i in range(rows)]
    batch = AnsweredBatch(
        tags=ids,
        counts=[1] * rows,
        queue_seconds=[0.001] * rows,
        latency_seconds=[0.002] * rows,
        inputs=Columns({k: np.asarray(v) for k, v in inputs.items()}, rows),
        outputs=np.asarray(outputs),
    )
    log.record(batch, version)
    # the log stamps a batch with the time it is recorded; tests place it in their own windows
    entry = log._buffer.pop()
    log._buffer.append(dataclasses.replace(entry, at=at))
    log.flush()
    log.close()
    return run_id, ids


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A real HTTP server on a loopback port that keeps every JSON body POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hook(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclasses.dataclass
class Hook:
    url: str
    received: list[dict[str, Any]]


def train_churn(seed: int = 0, *, rows: int = 400, flip: float = 0.0) -> tuple[Any, pd.DataFrame, np.ndarray]:
    """A logistic regression on (tenure, plan) (missing values imputed) and its training frame.

    ``flip`` mislabels that share of the rows.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": rng.normal(24, 6, rows), "plan": rng.integers(0, 3, rows).astype(np.float64)})
    y = ((frame["tenure"] < 24) ^ (rng.random(rows) < flip)).astype(int).to_numpy()
    return make_pipeline(SimpleImputer(), LogisticRegression()).fit(frame, y), frame, y


def churn_traffic(seed: int, rows: int, *, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Requests like the training data (tenure moved by ``shift``) and their true labels."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"tenure": rng.normal(24 + shift, 6, rows), "plan": rng.integers(0, 3, rows).astype(np.float64)}
    )
    return frame, (frame["tenure"] < 24 + shift).astype(int).to_numpy()
