"""Nothing is lost: concurrent writer processes, SIGTERM and SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from shipyard import Client
from shipyard.config import Settings

WRITER = textwrap.dedent(
    """
    import sys, shipyard as sy
    worker, points = sys.argv[1], int(sys.argv[2])
    with sy.start_run(experiment="concurrency", name=f"worker-{worker}"):
        for step in range(points):
            sy.log_metric("x", float(step), step=step)
    """
)

SLOW_LOGGER = textwrap.dedent(
    """
    import sys, time, shipyard as sy
    run = sy.start_run(experiment="crash", name=sys.argv[1])
    print(run.id, flush=True)
    step = 0
    while True:
        sy.log_metric("tick", time.time(), step=step)
        step += 1
        if step == int(sys.argv[2]):
            print("logged", flush=True)
            if sys.argv[1] == "term":
                time.sleep(3600)
        time.sleep(0.001)
    """
)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SHIPYARD_STORE": settings.store_uri,
        "SHIPYARD_ARTIFACTS": settings.artifact_uri,
        "SHIPYARD_HEARTBEAT_INTERVAL": "0.2",
        "SHIPYARD_HEARTBEAT_TIMEOUT": "2",
        **extra,
    }


@pytest.mark.slow
def test_four_processes_each_log_every_point_exactly_once(settings: Settings) -> None:
    client = Client(settings=settings)
    client.list_experiments()  # create the schema before the race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(i), "10000"], env=_env(settings, SHIPYARD_FLUSH_INTERVAL="0.05")
        )
        for i in range(4)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0, 0, 0]
    runs = client.search_runs("concurrency").items
    assert sorted(r.name for r in runs) == [f"worker-{i}" for i in range(4)]
    for run in runs:
        assert run.status == "finished"
        steps = [p.step for p in client.get_metric_history(run.id, "x")]
        assert steps == list(range(10000)), f"{run.name}: {len(steps)} points, {len(set(steps))} distinct"


def _start(settings: Settings, mode: str, points: int, flush_interval: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOGGER, mode, str(points)],
        env=_env(settings, SHIPYARD_FLUSH_INTERVAL=flush_interval),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "logged"
    return proc, run_id


@pytest.mark.slow
def test_sigterm_marks_the_run_killed_with_every_point(settings: Settings) -> None:
    # A flush interval far longer than the test: only the SIGTERM handler can have written the points.
    proc, run_id = _start(settings, "term", 500, flush_interval="600")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    client = Client(settings=settings)
    run = client.get_run(run_id)
    assert run.status == "killed"
    assert [p.step for p in client.get_metric_history(run_id, "tick")] == list(range(500))


@pytest.mark.slow
def test_sigkill_loses_at_most_the_last_flush_interval_and_the_run_turns_failed(settings: Settings) -> None:
    flush_interval = 0.2
    proc, run_id = _start(settings, "kill", 300, flush_interval=str(flush_interval))
    time.sleep(1.0)  # let it log and flush a few more batches
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    client = Client(settings=settings)
    history = client.get_metric_history(run_id, "tick")
    steps = [p.step for p in history]
    assert steps == list(range(len(steps))), "what was flushed is a gap-free, duplicate-free prefix"
    assert len(steps) >= 300
    last_flushed = history[-1].value
    # The bound: only points logged after the last flush started are lost (2x for scheduling slack).
    assert killed_at - last_flushed <= 2 * flush_interval + 0.5
    assert client.get_run(run_id).status == "running"  # its heartbeat has not lapsed yet
    deadline = time.monotonic() + 30
    while client.get_run(run_id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.25)
    assert client.get_run(run_id).status == "failed"
