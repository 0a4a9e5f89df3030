"""The prediction log records whole batches: sampled per request, each kept row with its own request id."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq

from shipyard.config import Settings
from shipyard.serving.batcher import AnsweredBatch
from shipyard.serving.prediction_log import PredictionLog, open_deployment_run
from shipyard.serving.validation import Columns
from shipyard.store import open_stores


def test_a_sampled_batch_keeps_each_request_whole(store: Settings) -> None:
    stores = open_stores(store)
    run_id = open_deployment_run(stores, ref="m@x", model="m", arm="primary", version=1)
    log = PredictionLog(stores, run_id=run_id, model="m", arm="primary", sample_rate=0.5, flush_seconds=3600)
    log.start()
    counts = [1, 2, 3] * 40  # 120 requests of 1-3 rows; request i's rows all hold the value i
    values = np.repeat(np.arange(len(counts), dtype=np.float64), counts)
    batch = AnsweredBatch(
        tags=[f"r{i}" for i in range(len(counts))],
        counts=counts,
        queue_seconds=[0.001] * len(counts),
        latency_seconds=[0.002] * len(counts),
        inputs=Columns({"x": values}, len(values)),
        outputs=values * 10,
    )
    log.record(batch, 1)
    written = log.flush()
    log.close()
    (ref,) = stores.runs.list_artifacts(run_id, "predictions")
    frame = pq.read_table(io.BytesIO(stores.artifacts.get_bytes(ref.digest))).to_pandas()
    assert len(frame) == written
    assert 0 < frame["_request_id"].nunique() < len(counts)  # sampled, not all or nothing
    for request_id, rows in frame.groupby("_request_id"):
        i = int(str(request_id)[1:])
        assert len(rows) == counts[i]  # a request is kept whole or not at all
        assert set(rows["x"]) == {float(i)}
        assert set(rows["prediction"]) == {i * 10.0}
    assert set(frame["_latency_ms"]) == {2.0}
