"""Monitoring tests: prediction logs written through serving's own PredictionLog, at chosen times."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

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
