"""The tracking guarantees hold in every thread: SIGTERM, heartbeat, bounded buffers, reported errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import StoreUnavailableError
from shipyard.store import Stores, open_stores
from shipyard.tracking import _buffer, _heartbeat, _stores
from shipyard.tracking import api as tracking_api

WORKER_THREAD_RUN = textwrap.dedent(
    """
    import threading, time, shipyard as sy

    def work():
        run = sy.start_run(experiment="threads", name="worker")
        for step in range(100):
            sy.log_metric("x", float(step), step=step)
        print(run.id, flush=True)
        time.sleep(3600)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join()
    """
)

SIGTERM_DURING_FLUSH = textwrap.dedent(
    """
    import time, shipyard as sy

    run = sy.start_run(experiment="flush", name="slow")
    real = run.buffer.store

    class SlowStore:
        # Holds the buffer's write lock (taken by flush) for a while, like a slow database.
        def log_metrics(self, run_id, points):
            print(run.id, flush=True)
            time.sleep(2)
            real.log_metrics(run_id, points)

    run.buffer.store = SlowStore()
    for step in range(100):
        sy.log_metric("x", float(step), step=step)
    run.flush()
    time.sleep(3600)
    """
)


def _spawn(settings: Settings, script: str) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "SHIPYARD_STORE": settings.store_uri,
        "SHIPYARD_ARTIFACTS": settings.artifact_uri,
        # Far longer than the test: only the SIGTERM path can have written the points.
        "SHIPYARD_FLUSH_INTERVAL": "600",
    }
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


@pytest.mark.slow
def test_sigterm_closes_a_run_started_on_a_worker_thread_with_every_point(settings: Settings) -> None:
    proc, run_id = _spawn(settings, WORKER_THREAD_RUN)
    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=60) == -signal.SIGTERM
    client = sy.Client(settings=settings)
    assert client.get_run(run_id).status == "killed"
    assert [p.step for p in client.get_metric_history(run_id, "x")] == list(range(100))


@pytest.mark.slow
def test_sigterm_during_a_flush_lets_the_flush_finish_and_loses_nothing(settings: Settings) -> None:
    proc, run_id = _spawn(settings, SIGTERM_DURING_FLUSH)  # printed from inside the flush
    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=60) == -signal.SIGTERM
    client = sy.Client(settings=settings)
    assert client.get_run(run_id).status == "killed"
    assert [p.step for p in client.get_metric_history(run_id, "x")] == list(range(100))


def _wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_the_heartbeat_outlives_a_failing_system_metrics_sampler(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken_sampler(now: float, step: int) -> list[Any]:
        calls.append(step)
        raise RuntimeError("sensor unplugged")

    monkeypatch.setattr(_heartbeat, "_system_points", broken_sampler)
    with sy.start_run(experiment="hb", log_system_metrics=True) as run:
        _wait_for(lambda: len(calls) >= 3, "three beats")  # each after the sampler raised
        assert sy.Client(settings=settings).get_run(run.id).status == "running"
    assert sy.Client(settings=settings).get_run(run.id).status == "finished"


class _GatedRuns:
    """A run store whose metric writes wait for ``gate`` and fail while ``broken`` is set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.gate = threading.Event()
        self.gate.set()
        self.broken = threading.Event()
        self.fail_end = 0

    def log_metrics(self, run_id: str, points: Any) -> None:
        self.gate.wait()
        if self.broken.is_set():
            raise StoreUnavailableError("database is down")
        self.real.log_metrics(run_id, points)

    def end_run(self, *args: Any) -> None:
        if self.fail_end:
            self.fail_end -= 1
            raise StoreUnavailableError("database is down")
        self.real.end_run(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _gated(run: tracking_api.ActiveRun) -> _GatedRuns:
    gated = _GatedRuns(run.stores.runs)
    run.buffer.store = gated
    run.stores = replace(run.stores, runs=gated)
    return gated


def test_a_full_buffer_makes_log_metric_wait_for_the_flusher(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_buffer, "MAX_BUFFERED", 50)
    run = sy.start_run(experiment="backpressure")
    store = _gated(run)
    store.gate.clear()  # the database stalls
    logger = threading.Thread(target=lambda: [run.log_metric("x", float(i), step=i) for i in range(200)])
    logger.start()
    _wait_for(lambda: len(run.buffer) == 50, "a full buffer")

    assert logger.is_alive(), "the logger waits instead of growing the buffer"
    assert len(run.buffer) == 50
    store.gate.set()
    logger.join(timeout=60)
    run.end()
    history = sy.Client(settings=settings).get_metric_history(run.id, "x")
    assert [p.step for p in history] == list(range(200))


def test_a_failed_background_flush_is_logged_at_once_and_raised_by_flush(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    run = sy.start_run(experiment="errors")
    store = _gated(run)
    store.broken.set()
    with caplog.at_level(logging.WARNING, logger="shipyard.tracking"):
        for step in range(10):
            run.log_metric("x", float(step), step=step)
        _wait_for(lambda: any(run.id in r.getMessage() for r in caplog.records), "the warning")
    assert "database is down" in caplog.text
    with pytest.raises(StoreUnavailableError, match="database is down"):
        run.flush()

    store.broken.clear()
    run.end()
    assert [p.step for p in sy.Client(settings=settings).get_metric_history(run.id, "x")] == list(range(10))


def test_an_end_that_fails_keeps_the_run_live_and_its_points_queued(settings: Settings) -> None:
    run = sy.start_run(experiment="errors")
    store = _gated(run)
    for step in range(10):
        run.log_metric("x", float(step), step=step)
    store.fail_end = 1
    with pytest.raises(StoreUnavailableError):
        run.end()
    assert not run.ended

    run.log_metric("x", 10.0, step=10)
    run.end()
    client = sy.Client(settings=settings)
    assert client.get_run(run.id).status == "finished"
    assert [p.step for p in client.get_metric_history(run.id, "x")] == list(range(11))


def test_a_run_failed_by_a_lapsed_heartbeat_records_that_its_process_ended_it(settings: Settings) -> None:
    client = sy.Client(settings=settings)
    with sy.start_run(experiment="lapse") as run:
        sy.log_metric("x", 1.0)
        # As if the process had been suspended past the heartbeat timeout.
        assert client.stores.runs.fail_stale_runs(time.time() + 3600) == [run.id]
        assert client.get_run(run.id).status == "failed"
    got = client.get_run(run.id)
    assert got.status == "finished"
    assert "marked failed when its heartbeat lapsed" in got.tags["shipyard.reopened"]
    assert got.metrics == {"x": 1.0}


def test_the_settings_cache_stays_bounded_when_run_variables_change(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3 * _stores._SETTINGS_CACHE_SIZE):
        monkeypatch.setenv("SHIPYARD_PARENT_RUN_ID", f"parent-{i}")
        assert tracking_api.resolve_stores().settings.store_uri == settings.store_uri
    assert len(_stores._settings_cache) <= _stores._SETTINGS_CACHE_SIZE


def test_settings_that_differ_only_in_intervals_share_one_engine(settings: Settings, stores: Stores) -> None:
    other = open_stores(replace(settings, flush_interval=7.0, heartbeat_interval=3.0))

    assert other.settings.flush_interval == 7.0
    assert other.runs is stores.runs, "no second engine, so none left undisposed"
    assert stores.runs.list_experiments() == other.runs.list_experiments()
