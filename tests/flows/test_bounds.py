"""A failed flow fails loudly; executors keep their resource word; nothing grows without bound."""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import psutil
import pytest

from shipyard.config import Settings
from shipyard.errors import FlowRunError, StoreUnavailableError
from shipyard.flows import (
    LocalExecutor,
    Resources,
    _recorder,
    cancel_flow_run,
    emit_event,
    flow,
    get_flow_run,
    list_flow_runs,
    on_event,
    task,
)
from shipyard.flows._recorder import Recorder
from shipyard.store import Stores
from shipyard.store.entities import TaskLogLine
from tests.flows.conftest import by_key


@task
def boom(x: int) -> int:
    raise ValueError(f"bad input {x}")


@task
def fine(x: int) -> int:
    return x


def test_calling_a_failed_flow_raises_naming_the_failed_tasks_and_carrying_the_run(settings: Settings) -> None:
    @flow
    def branches() -> list[int]:
        return [boom(1), boom(2), fine(3)]  # type: ignore[list-item]

    with pytest.raises(FlowRunError, match=r"failed tasks: boom-0, boom-1") as caught:
        branches()

    run = caught.value.flow_run
    assert run is caught.value.run
    assert run.state == "failed"
    assert caught.value.failed_tasks == ("boom-0", "boom-1")
    assert by_key(run)["fine-0"].state == "succeeded"
    assert get_flow_run(run.id).state == "failed"
    returned = branches.run()  # the run object on request, without raising
    assert returned.state == "failed"
    assert returned.id != run.id


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_failed_task_run_records_its_exception_type_message_and_traceback(settings: Settings, kind: str) -> None:
    @task(kind=kind)
    def parse(text: str) -> int:
        return int(text)

    @flow
    def pipeline() -> int:
        return parse("x1").result()

    run = pipeline.run()

    stored = by_key(get_flow_run(run.id))["parse-0"]
    assert stored.state == "failed"
    error = stored.error or ""
    assert error.startswith("ValueError: invalid literal for int() with base 10: 'x1'")
    assert "Traceback (most recent call last)" in error
    assert "in parse" in error


class _Payload:
    """A task argument whose lifetime the test watches."""


def test_a_finished_task_leaves_nothing_behind_in_its_timeout_timer(settings: Settings) -> None:
    executor = LocalExecutor(cpus=2)
    watched: list[weakref.ref[_Payload]] = []

    @task(timeout=3600)
    def use(payload: _Payload) -> int:
        return 1

    @flow(executor=executor)
    def pipeline() -> int:
        payload = _Payload()
        watched.append(weakref.ref(payload))
        return use(payload).result()

    try:
        assert pipeline() == 1
        gc.collect()
        assert watched[0]() is None  # the hour-long timeout no longer holds the task's argument
    finally:
        executor.close()


def test_a_timed_out_thread_task_keeps_its_cpus_until_its_thread_returns(settings: Settings) -> None:
    other_started = threading.Event()
    slow_returned = threading.Event()
    seen: list[bool] = []

    @task(timeout=0.1, resources=Resources(cpus=1))
    def slow() -> None:
        other_started.wait(1.5)  # returns early only if the executor oversubscribed
        slow_returned.set()

    @task(resources=Resources(cpus=1))
    def other() -> None:
        other_started.set()
        seen.append(slow_returned.is_set())

    @flow(executor=LocalExecutor(cpus=1))
    def pipeline() -> None:
        slow()
        other()

    run = pipeline.run()

    tasks = by_key(run)
    assert tasks["slow-0"].state == "failed"
    assert "keeps its resources until it returns" in (tasks["slow-0"].error or "")
    assert tasks["other-0"].state == "succeeded"
    assert seen == [True]


@task(kind="process")
def die(code: int) -> None:
    os._exit(code)


@task(kind="process")
def pid() -> int:
    return os.getpid()


def test_dead_worker_processes_are_reported_reaped_and_replaced(settings: Settings) -> None:
    executor = LocalExecutor(cpus=1, max_processes=1)

    @flow(executor=executor)
    def crashes() -> list[int]:
        for code in (3, 4, 5):
            die(code, wait_for=[])
        return [pid().result(), pid().result()]

    try:
        run = crashes.run()
        tasks = by_key(run)
        for key, code in (("die-0", 3), ("die-1", 4), ("die-2", 5)):
            assert tasks[key].state == "failed"
            assert f"died (exit code {code})" in (tasks[key].error or "")
        assert tasks["pid-0"].state == tasks["pid-1"].state == "succeeded"
        children = psutil.Process().children()
        assert [c for c in children if c.status() == psutil.STATUS_ZOMBIE] == []
        assert len([c for c in children if "spawn" in " ".join(c.cmdline())]) <= 1
    finally:
        executor.close()


@task(kind="process", resources=Resources(cpus=1))
def stuck(path: str) -> None:
    Path(path).write_text("started")
    time.sleep(60)


@task(kind="process", resources=Resources(cpus=2))
def wide() -> str:
    return "ran"


def test_cancelled_process_tasks_free_their_cpus_for_the_next_run(settings: Settings, tmp_path: Path) -> None:
    executor = LocalExecutor(cpus=2, max_processes=1)  # the second stuck task waits for the one worker

    @flow(executor=executor)
    def blocked() -> None:
        stuck(str(tmp_path / "a"))
        stuck(str(tmp_path / "b"))

    @flow(executor=executor)
    def after() -> str:
        return wide().result()

    results: list[Any] = []
    try:
        first = threading.Thread(target=lambda: results.append(blocked.run()), daemon=True)
        first.start()
        deadline = time.monotonic() + 60
        while not list((tmp_path).glob("[ab]")) and time.monotonic() < deadline:
            time.sleep(0.05)
        (running,) = list_flow_runs("blocked", states=["running"])
        cancel_flow_run(running.id)
        first.join(60)
        second = threading.Thread(target=lambda: results.append(after.run()), daemon=True)
        second.start()
        second.join(60)  # on a leak of the first run's CPUs, `wide` would wait for ever

        assert [r.state for r in results] == ["cancelled", "succeeded"]
        assert results[1].result == "ran"
    finally:
        executor.close()


class _FlakyFlows:
    """The flow store with log writes failing while ``down``, as during an outage."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.down = True
        self.written: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def append_task_logs(self, lines: list[TaskLogLine]) -> None:
        if self.down:
            raise StoreUnavailableError("the store is down")
        self.written.extend(line.text for line in lines)


def test_the_recorder_keeps_a_bounded_number_of_unwritten_log_lines(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_recorder, "MAX_PENDING_LOGS", 50)
    flows = _FlakyFlows(stores.flows)
    recorder = Recorder(dataclasses.replace(stores, flows=flows), "f" * 32, on_cancel=lambda: None)
    for round_ in range(4):
        for i in range(40):
            recorder.log(TaskLogLine("f" * 32, "t", "k-0", "stdout", f"{round_}-{i}", 0.0))
        with pytest.raises(StoreUnavailableError):
            recorder.flush()

    assert recorder.dropped_logs == 4 * 40 - 50
    assert "dropping the oldest" in capfd.readouterr().err
    flows.down = False  # the store is back: the newest lines kept are written, in order
    recorder.flush()
    assert flows.written == [f"{r}-{i}" for r in range(4) for i in range(40)][-50:]


def test_on_event_starts_from_the_latest_event_id(stores: Stores, settings: Settings) -> None:
    assert stores.flows.last_event_id("alert", "drift") == 0
    ids = [emit_event("alert", "drift", {"n": n}) for n in range(3)]
    emit_event("alert", "other")

    assert stores.flows.last_event_id("alert", "drift") == ids[-1]
    trigger = on_event("alert", "drift", param="payload")
    assert trigger.baseline(stores) == str(ids[-1])
    assert trigger.poll(stores, str(ids[0]))[-1].params == {"payload": {"n": 2}}
