"""Buffered metric writes: ``log_metric`` appends to memory, a background thread writes batches.

Bound on loss: a process killed with SIGKILL loses at most the points logged since the
last flush started, i.e. at most ``flush_interval`` seconds of points (1 s by default),
or ``MAX_BUFFERED`` points if it logs faster than that. SIGTERM, interpreter exit and
``end_run`` flush everything.

Bound on memory: a buffer holds at most ``MAX_BUFFERED`` points. A logger that finds it
full wakes the flusher and waits for room (backpressure), unless the last background
write failed: then it raises that error rather than wait on a store that is down.

No silent error: a failed background write is logged at once (logger ``shipyard.tracking``)
and its points stay queued for the next try; ``flush()`` and the run's end write them
themselves and so raise if the store still refuses.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from shipyard.store.entities import MetricPoint
from shipyard.store.protocols import RunStore

MAX_BUFFERED = 20_000
_log = logging.getLogger("shipyard.tracking")


class MetricBuffer:
    """Points logged to one run and not yet written."""

    __slots__ = ("__weakref__", "_error", "_lock", "_points", "_room", "_write_lock", "run_id", "store")

    def __init__(self, run_id: str, store: RunStore) -> None:
        self.run_id = run_id
        self.store = store
        self._points: list[MetricPoint] = []
        # Re-entrant, so that code run on this thread while it holds them (a signal handler) cannot
        # deadlock on them; the SIGTERM handler itself hands its writes to another thread.
        self._lock = threading.RLock()
        self._room = threading.Condition(self._lock)
        # One writer at a time, so flush() returns only once every point taken so far is stored
        # (the background flusher may be mid-write when a user flushes).
        self._write_lock = threading.RLock()
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._points)

    @property
    def error(self) -> BaseException | None:
        """The error of the last background write, if it failed (cleared by a write that works)."""
        return self._error

    def add(self, point: MetricPoint) -> None:
        """Queue one point (the hot path: an append under a lock)."""
        self.extend([point])

    def extend(self, points: list[MetricPoint], *, block: bool = True) -> None:
        """Queue several points; with ``block``, wait while the buffer is full."""
        with self._lock:
            while block and self._points and len(self._points) + len(points) > MAX_BUFFERED:
                if self._error is not None:
                    raise self._error
                _flusher.wake()
                self._room.wait(1.0)  # the flusher notifies; the timeout only rechecks the error
            self._points.extend(points)
            full = len(self._points) >= MAX_BUFFERED
        if full:
            _flusher.wake()

    def drain(self) -> list[MetricPoint]:
        """Take every queued point, for a caller that writes them itself (the run's last write)."""
        with self._write_lock, self._lock:
            batch, self._points = self._points, []
            self._room.notify_all()
        return batch

    def flush(self, *, background: bool = False) -> int:
        """Write every queued point in one transaction; on failure they stay queued."""
        with self._write_lock:
            with self._lock:
                batch, self._points = self._points, []
            if not batch:
                return 0
            try:
                self.store.log_metrics(self.run_id, batch)
            except BaseException as exc:
                with self._lock:
                    self._points[:0] = batch
                    if background:
                        self._error = exc
                    self._room.notify_all()
                raise
            with self._lock:
                self._error = None
                self._room.notify_all()
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

    def flush_all(self, *, background: bool = False) -> None:
        """Flush every buffer, even after one fails; then raise the first failure."""
        with self._lock:
            buffers = list(self._buffers)
        first: BaseException | None = None
        for buffer in buffers:
            was_failing = buffer.error is not None
            try:
                buffer.flush(background=background)
            except Exception as exc:
                # Said at once (once per outage, not every tick), and again by flush() or the run's end.
                if background and not was_failing:
                    _log.warning("shipyard: writing metrics of run %s failed, will retry: %s", buffer.run_id, exc)
                first = first or exc
        if first is not None:
            raise first

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush_all(background=True)
            except Exception as exc:  # the points stay queued: retry next tick
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
