"""Prometheus metrics of a server, in a registry of its own (two apps in one process never collide).

With several workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by the launcher before
``prometheus_client`` is imported; each worker writes its values there and ``/metrics``
answers the sum over workers, whichever worker the scrape reaches.

Names (every one labelled by ``model`` and ``arm``: ``primary``, ``canary`` or ``shadow``):

    shipyard_requests_total{model,version,arm,route,status}
    shipyard_request_seconds{model,arm}          end to end, as the server saw it
    shipyard_queue_seconds{model,version,arm}    waiting for a batch
    shipyard_compute_seconds{model,version,arm}  one model call
    shipyard_batch_rows{model,version,arm}       rows per model call
    shipyard_batch_requests{model,version,arm}   requests per model call
    shipyard_queue_depth{model,arm}              requests waiting now
    shipyard_model_load_seconds{model,version,arm}
    shipyard_model_load_failures_total{model,arm}
    shipyard_model_version{model,arm}            the version serving now
    shipyard_prediction_value{model,version,arm} the first numeric output
    shipyard_prediction_log_dropped_total{model,arm}
    shipyard_feature_read_batch_size{model,arm}  entity rows per online feature read (one per model call)
    shipyard_feature_read_seconds{model,arm}     one online feature read (models served by entity id)
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
VALUE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.5, 5.0, 10.0, 100.0, 1000.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServerMetrics:
    """Every metric the server records."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "shipyard_requests", "Requests answered", ["model", "version", "arm", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "shipyard_request_seconds", "Request latency", ["model", "arm"], buckets=LATENCY_BUCKETS, registry=r
        )
        labels = ["model", "version", "arm"]
        self.queue_time = Histogram(
            "shipyard_queue_seconds", "Time waiting for a batch", labels, buckets=LATENCY_BUCKETS, registry=r
        )
        self.compute_time = Histogram(
            "shipyard_compute_seconds", "Time of one model call", labels, buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_rows = Histogram(
            "shipyard_batch_rows", "Rows per model call", labels, buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "shipyard_batch_requests", "Requests per model call", labels, buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "shipyard_queue_depth", "Requests waiting", ["model", "arm"], multiprocess_mode="livesum", registry=r
        )
        self.load_time = Histogram(
            "shipyard_model_load_seconds",
            "Time to load and warm a model version",
            labels,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.load_failures = Counter(
            "shipyard_model_load_failures", "Failed loads of a new version", ["model", "arm"], registry=r
        )
        self.version = Gauge(
            "shipyard_model_version", "Version serving now", ["model", "arm"], multiprocess_mode="livemax", registry=r
        )
        self.prediction_value = Histogram(
            "shipyard_prediction_value", "Predicted values", labels, buckets=VALUE_BUCKETS, registry=r
        )
        self.log_dropped = Counter(
            "shipyard_prediction_log_dropped", "Predictions not logged: buffer full", ["model", "arm"], registry=r
        )
        self.feature_read_rows = Histogram(
            "shipyard_feature_read_batch_size",
            "Entity rows per online feature read",
            ["model", "arm"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.feature_read_time = Histogram(
            "shipyard_feature_read_seconds",
            "Time of one online feature read",
            ["model", "arm"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (summed over workers in multiprocess mode)."""
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ArmObserver:
    """The metrics of one loaded version of one arm; handed to its batcher (label lookups done once)."""

    __slots__ = ("_batch_requests", "_batch_rows", "_compute", "_depth", "_queue", "_values", "arm", "model", "version")

    def __init__(self, metrics: ServerMetrics, model: str, version: str, arm: str) -> None:
        self.model, self.version, self.arm = model, version, arm
        labels = (model, version, arm)
        self._batch_rows = metrics.batch_rows.labels(*labels)
        self._batch_requests = metrics.batch_requests.labels(*labels)
        self._compute = metrics.compute_time.labels(*labels)
        self._queue = metrics.queue_time.labels(*labels)
        self._values = metrics.prediction_value.labels(*labels)
        self._depth = metrics.queue_depth.labels(model, arm)

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        """Record one model call."""
        self._batch_rows.observe(rows)
        self._batch_requests.observe(requests)
        self._compute.observe(seconds)

    def queue_depth(self, waiting: int) -> None:
        """Record how many requests wait."""
        self._depth.set(waiting)

    def answered(self, queue_seconds: list[float], outputs: Any) -> None:
        """Record the waits of a batch's requests and its predicted values."""
        observe = self._queue.observe
        for seconds in queue_seconds:
            observe(seconds)
        values = _numeric(outputs)
        if values is not None:
            for value in values:
                self._values.observe(value)


def _numeric(outputs: Any) -> list[float] | None:
    kind = getattr(getattr(outputs, "dtype", None), "kind", "O")
    if kind not in "fiub":
        return None
    first = outputs if outputs.ndim == 1 else outputs.reshape(outputs.shape[0], -1)[:, 0]
    return [float(v) for v in first.tolist()]
