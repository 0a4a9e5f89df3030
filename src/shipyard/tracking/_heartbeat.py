"""The heartbeat: proves a run's process is alive, and samples system metrics when asked.

A run whose heartbeat is older than ``heartbeat_timeout`` is shown as failed: its process
died without a chance to say so (SIGKILL, power loss, OOM killer).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Protocol

from shipyard.store.entities import MetricPoint
from shipyard.store.registry import Stores
from shipyard.tracking._buffer import MetricBuffer

_log = logging.getLogger("shipyard.tracking")


class BeatingRun(Protocol):
    """What the heartbeat reads of a run (an ``ActiveRun``)."""

    id: str
    stores: Stores
    ended: bool
    log_system_metrics: bool
    buffer: MetricBuffer


def _system_points(now: float, step: int) -> list[MetricPoint]:
    try:
        import psutil
    except ImportError:
        return []
    memory = psutil.virtual_memory()
    points = [
        MetricPoint("system/cpu_percent", float(psutil.cpu_percent(interval=None)), step, now),
        MetricPoint("system/memory_percent", float(memory.percent), step, now),
        MetricPoint("system/memory_used_mb", memory.used / 2**20, step, now),
    ]
    points.extend(_gpu_points(now, step))
    return points


def _gpu_points(now: float, step: int) -> list[MetricPoint]:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
    except Exception:  # no NVIDIA driver or no pynvml: no GPU metrics, not an error
        return []
    points = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        points.append(MetricPoint(f"system/gpu{index}_utilization", float(util.gpu), step, now))
        points.append(MetricPoint(f"system/gpu{index}_memory_used_mb", mem.used / 2**20, step, now))
    return points


class Heartbeat:
    """One daemon thread per process beating for every active run."""

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[BeatingRun] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._interval = 10.0
        self._system_step = 0
        self._sampler_failed = False

    def add(self, run: BeatingRun, interval: float) -> None:
        with self._lock:
            self._runs.add(run)
            self._interval = min(self._interval, interval) if self._thread else interval
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="shipyard-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, run: BeatingRun) -> None:
        with self._lock:
            self._runs.discard(run)

    def _loop(self) -> None:
        while True:
            time.sleep(self._interval)
            try:
                self._beat()
            except Exception:  # never let one bad beat stop the thread: live runs would turn failed
                _log.exception("shipyard: heartbeat failed; retrying next beat")

    def _beat(self) -> None:
        with self._lock:
            runs = [r for r in self._runs if not r.ended]
        now = time.time()
        by_store: dict[int, list[BeatingRun]] = {}
        for run in runs:
            by_store.setdefault(id(run.stores.runs), []).append(run)
        for group in by_store.values():
            try:
                group[0].stores.runs.heartbeat([r.id for r in group], now)
            except Exception:  # store briefly down: the next beat retries
                continue
        sampled = [r for r in runs if r.log_system_metrics]
        if not sampled:
            return
        try:
            points = _system_points(now, self._system_step)
        except Exception as exc:  # a broken sampler costs the samples, not the heartbeat
            if not self._sampler_failed:
                _log.warning("shipyard: system metrics sampling failed (%s); the runs go on without them", exc)
            self._sampler_failed = True
            return
        self._system_step += 1
        for run in sampled:
            # Never wait on a full buffer here: a blocked heartbeat would fail a live run.
            run.buffer.extend(points, block=False)


heartbeat = Heartbeat()
