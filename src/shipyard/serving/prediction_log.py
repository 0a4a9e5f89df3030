"""Prediction logging: sampled, buffered in memory, written as Parquet partitions by a thread.

Where it lands (the store has no prediction table; monitoring lists these files):

- every arm of a deployment gets a run in experiment ``serving`` named after the arm's
  reference (``churn@champion``), tagged ``shipyard.serving.model``, ``.ref`` and ``.arm``;
- each flush writes one Parquet file through the artifact store (content-addressed) and
  records it as an artifact of that run at
  ``predictions/date=YYYY-MM-DD/hour=HH/part-<ms>-<pid>-<n>.parquet`` (Hive-style, UTC);
- a file's columns: ``_request_id``, ``_timestamp`` (UTC), ``_model``, ``_version``,
  ``_arm``, ``_latency_ms``, then, for a model fed by entity id, what the request sent
  (its entity ids, e.g. ``user_id``, and request values), then one column per model input
  (its own name: the feature values used), then the outputs (the signature's output
  names, else ``prediction`` or ``prediction_0``, ...).

Requests are recorded once per model call, by the batcher's hook, not one by one: one
deque append per batch on the event loop (no I/O, no lock held while writing), and a
flush that joins a few hundred batches instead of tens of thousands of requests, so the
writer thread never holds the GIL long enough to show in the server's tail latency.
When the buffer holds ``max_rows`` rows, later predictions are dropped and counted
rather than slowing the server.
"""

from __future__ import annotations

import collections
import contextlib
import getpass
import io
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shipyard.serving.batcher import AnsweredBatch
from shipyard.serving.validation import Array
from shipyard.store import Stores
from shipyard.store.entities import ArtifactRef

EXPERIMENT = "serving"
PREFIX = "predictions"
logger = logging.getLogger("shipyard.serving")


def open_deployment_run(stores: Stores, *, ref: str, model: str, arm: str, version: int) -> str:
    """Create the run an arm's prediction log is recorded under; returns its id."""
    experiment = stores.runs.find_experiment(EXPERIMENT) or stores.runs.create_experiment(EXPERIMENT)
    now = time.time()
    run = stores.runs.create_run(
        experiment.id,
        name=ref,
        user=_user(),
        parent_run_id=None,
        lineage={"kind": "serving", "host": socket.gethostname(), "pid": os.getpid(), "version": version},
        tags={"shipyard.serving.model": model, "shipyard.serving.ref": ref, "shipyard.serving.arm": arm},
        start_time=now,
    )
    return run.id


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """One model call's logged requests: per request its id, rows and latency; every row's data."""

    request_ids: list[str]
    counts: list[int]
    latency_ms: list[float]
    at: float
    version: int
    data: dict[str, Array]
    outputs: Array
    rows: int


class PredictionLog:
    """One arm's prediction log: ``record`` on the request path, a thread writes partitions."""

    def __init__(
        self,
        stores: Stores,
        *,
        run_id: str,
        model: str,
        arm: str,
        output_names: Sequence[str] = (),
        sample_rate: float = 1.0,
        flush_seconds: float = 10.0,
        max_rows: int = 50_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self._stores = stores
        self._model = model
        self._arm = arm
        self._output_names = tuple(output_names)
        self._sample_rate = sample_rate
        self._flush_seconds = flush_seconds
        self._max_rows = max_rows
        self._on_drop = on_drop
        self._buffer: collections.deque[_Entry] = collections.deque()
        self._rows = 0
        self._written = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._beat_every = min(flush_seconds, stores.settings.heartbeat_interval)

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None and self._sample_rate > 0:
            self._thread = threading.Thread(target=self._loop, name=f"shipyard-predlog-{self._arm}", daemon=True)
            self._thread.start()

    def record(self, batch: AnsweredBatch, version: int) -> None:
        """Keep one model call's sampled requests for the next partition (once per batch; never blocks)."""
        if self._thread is None:
            return
        tags, counts, latencies = batch.tags, batch.counts, batch.latency_seconds
        data, outputs = batch.inputs.data, batch.outputs
        if batch.context:
            data = {**batch.context, **data}
        if self._sample_rate < 1:
            keep = [random.random() < self._sample_rate for _ in tags]
            if not any(keep):
                return
            if not all(keep):
                mask = np.repeat(keep, counts)
                tags = [v for v, k in zip(tags, keep, strict=True) if k]
                counts = [v for v, k in zip(counts, keep, strict=True) if k]
                latencies = [v for v, k in zip(latencies, keep, strict=True) if k]
                data = {name: column[mask] for name, column in data.items()}
                outputs = outputs[mask]
        rows = sum(counts)
        if self._rows + rows > self._max_rows:
            if self._on_drop is not None:
                self._on_drop(rows)
            return
        latency_ms = [seconds * 1000 for seconds in latencies]
        self._buffer.append(_Entry(tags, counts, latency_ms, time.time(), version, data, outputs, rows))
        self._rows += rows
        if self._rows >= self._max_rows // 2:
            self._wake.set()

    def flush(self) -> int:
        """Write what is buffered now, from the calling thread; returns the rows written."""
        entries = []
        while self._buffer:
            entries.append(self._buffer.popleft())
        if not entries:
            return 0
        rows = sum(e.rows for e in entries)
        self._rows -= rows
        payload = _parquet(entries, self._model, self._arm, self._output_names)
        digest, size = self._stores.artifacts.put_bytes(payload)
        stamp = datetime.fromtimestamp(entries[0].at, UTC)
        self._written += 1
        path = (
            f"{PREFIX}/date={stamp:%Y-%m-%d}/hour={stamp:%H}/"
            f"part-{int(entries[0].at * 1000)}-{os.getpid()}-{self._written}.parquet"
        )
        self._stores.runs.record_artifacts(self.run_id, [ArtifactRef(path, digest, size)])
        return rows

    def close(self) -> None:
        """Stop the thread after writing what is buffered."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        last_flush = last_beat = time.monotonic()
        while True:
            self._wake.wait(timeout=min(self._flush_seconds, self._beat_every))
            self._wake.clear()
            now = time.monotonic()
            stopping = self._stopping
            if stopping or now - last_flush >= self._flush_seconds or self._rows >= self._max_rows // 2:
                self._safely(self.flush)
                last_flush = now
            if now - last_beat >= self._beat_every:
                self._safely(lambda: self._stores.runs.heartbeat([self.run_id], time.time()))
                last_beat = now
            if stopping:
                return

    def _safely(self, action: Callable[[], Any]) -> None:
        # The log must never take the server down: a store outage loses a partition, loudly.
        try:
            action()
        except Exception:
            logger.exception("prediction log of %s (%s) could not be written", self._model, self._arm)


def _parquet(entries: Sequence[_Entry], model: str, arm: str, output_names: Sequence[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    counts = [count for e in entries for count in e.counts]
    per_entry = [e.rows for e in entries]
    total = sum(per_entry)
    request_ids = np.array([rid for e in entries for rid in e.request_ids], dtype=object)
    columns: dict[str, Any] = {
        "_request_id": np.repeat(request_ids, counts),
        "_timestamp": pa.array(np.repeat([int(e.at * 1e6) for e in entries], per_entry), pa.timestamp("us", tz="UTC")),
        "_model": np.repeat(np.array([model], dtype=object), total),
        "_version": np.repeat([e.version for e in entries], per_entry),
        "_arm": np.repeat(np.array([arm], dtype=object), total),
        "_latency_ms": np.repeat([ms for e in entries for ms in e.latency_ms], counts),
    }
    for name in entries[0].data:
        columns[name] = np.concatenate([e.data[name] for e in entries if name in e.data])
    outputs = np.concatenate([e.outputs.reshape(e.outputs.shape[0], -1) for e in entries])
    names = list(output_names) if len(output_names) == outputs.shape[1] else _default_names(outputs.shape[1])
    for i, name in enumerate(names):
        columns[name if name not in columns else f"output.{name}"] = outputs[:, i]
    table = pa.table(columns)
    sink = io.BytesIO()
    with contextlib.closing(sink):
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()


def _default_names(width: int) -> list[str]:
    return ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]
