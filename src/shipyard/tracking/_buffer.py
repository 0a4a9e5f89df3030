"""Buffered metric writes: ``log_metric`` appends to memory, a background thread writes batches.

Bound on loss: a process killed with SIGKILL loses at most the points logged since the
last flush started, i.e. at most ``flush_interval`` seconds of points (1 s by default),
or ``MAX_BUFFERED`` points if it logs faster than that. SIGTERM, interpreter exit and
``end_run`` flush everything.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from shipyard.store.entities import MetricPoint
from shipyard.store.protocols import RunStore

MAX_BUFFERED = 20_000


class MetricBuffer:
    """Points logged to one run and not yet written."""

    __slots__ = ("__weakref__", "_lock", "_points", "_write_lock", "run_id", "store")

    def __init__(self, run_id: str, store: RunStore) -> None:
        self.run_id = run_id
        self.store = store
        self._points: list[MetricPoint] = []
        # Re-entrant: the SIGTERM handler flushes from the main thread, which may hold them.
        self._lock = threading.RLock()
        # One writer at a time, so flush() returns only once every point taken so far is stored
        # (the background flusher may be mid-write when a user flushes).
        self._write_lock = threading.RLock()

    def add(self, point: MetricPoint) -> None:
        """Queue one point (the hot path: an append under a lock)."""
        with self._lock:
            self._points.append(point)
            full = len(self._points) >= MAX_BUFFERED
        if full:
            _flusher.wake()

    def extend(self, points: list[MetricPoint]) -> None:
        """Queue several points."""
        with self._lock:
            self._points.extend(points)
            full = len(self._points) >= MAX_BUFFERED
        if full:
            _flusher.wake()

    def drain(self) -> list[MetricPoint]:
        """Take every queued point, for a caller that writes them itself (the run's last write)."""
        with self._write_lock, self._lock:
            batch, self._points = self._points, []
        return batch

    def flush(self) -> int:
        """Write every queued point in one transaction; on failure they stay queued."""
        with self._write_lock:
            with self._lock:
                batch, self._points = self._points, []
            if not batch:
                return 0
            try:
                self.store.log_metrics(self.run_id, batch)
            except BaseException:
                with self._lock:
                    self._points[:0] = batch
                raise
            return len(batch)


class _Flusher:
    """One daemon thread per process that flushes every live buffer on an interval."""

    def __init__(self) -> None:
        self._buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.interval = 1.0
        self.on_error: Callable[[BaseException], None] | None = None

    def register(self, buffer: MetricBuffer, interval: float) -> None:
        with self._lock:
            self._buffers.add(buffer)
            self.interval = min(self.interval, interval) if self._thread else interval
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="shipyard-flusher", daemon=True)
                self._thread.start()

    def unregister(self, buffer: MetricBuffer) -> None:
        with self._lock:
            self._buffers.discard(buffer)

    def wake(self) -> None:
        self._wake.set()

    def flush_all(self) -> None:
        with self._lock:
            buffers = list(self._buffers)
        for buffer in buffers:
            buffer.flush()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush_all()
            except Exception as exc:  # the store is down: keep points, retry next tick
                if self.on_error is not None:
                    self.on_error(exc)


_flusher = _Flusher()


def register_buffer(buffer: MetricBuffer, interval: float) -> None:
    """Have the background thread flush ``buffer`` every ``interval`` seconds."""
    _flusher.register(buffer, interval)


def unregister_buffer(buffer: MetricBuffer) -> None:
    """Stop flushing ``buffer`` in the background (after its run ended)."""
    _flusher.unregister(buffer)


def flush_all() -> None:
    """Write every buffered point of every active run now."""
    _flusher.flush_all()
