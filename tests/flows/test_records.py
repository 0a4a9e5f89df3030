"""What a run leaves in the store: states, timings, values, logs, lineage; bad input leaves nothing."""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.flows import _values, cancel_flow_run, flow, get_flow_run, get_logger, list_flow_runs, task
from shipyard.store import Stores
from shipyard.tracking.api import active_run, start_run
from tests.flows.conftest import by_key


@task
def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n), "y": [float(i) / 2 for i in range(n)]})


@task
def array(n: int) -> np.ndarray:
    return np.arange(n, dtype="float64")


@task
def table(n: int) -> pa.Table:
    return pa.table({"a": list(range(n))})


def test_outputs_are_stored_with_the_serializer_that_fits(settings: Settings, stores: Stores) -> None:
    @flow
    def pipeline(n: int = 4) -> dict[str, object]:
        return {"frame": frame(n), "array": array(n), "table": table(n)}

    run = pipeline.run(n=5)

    tasks = by_key(run)
    assert tasks["frame-0"].output is not None
    assert tasks["frame-0"].output.serializer == "parquet-pandas"
    assert tasks["array-0"].output is not None
    assert tasks["array-0"].output.serializer == "npy"
    assert tasks["table-0"].output is not None
    assert tasks["table-0"].output.serializer == "parquet-arrow"
    loaded = _values.load(stores, tasks["frame-0"].output)
    pd.testing.assert_frame_equal(loaded, frame.fn(5))
    np.testing.assert_array_equal(_values.load(stores, tasks["array-0"].output), np.arange(5, dtype="float64"))
    assert _values.load(stores, tasks["table-0"].output).equals(table.fn(5))
    assert tasks["frame-0"].inputs["n"] is not None
    assert _values.load(stores, tasks["frame-0"].inputs["n"]) == 5
    stored = get_flow_run(run.id)
    pd.testing.assert_frame_equal(stored.result["frame"], frame.fn(5))


def test_large_values_go_to_the_artifact_store(settings: Settings, stores: Stores) -> None:
    @task
    def big() -> bytes:
        return b"x" * (_values.INLINE_LIMIT + 1)

    @flow
    def pipeline() -> int:
        return len(big().result())

    run = pipeline.run()

    ref = by_key(run)["big-0"].output
    assert ref is not None
    assert stores.artifacts.exists(ref.digest)
    assert _values.load(stores, ref) == b"x" * (_values.INLINE_LIMIT + 1)


def test_each_task_run_records_state_attempts_timings_resources(settings: Settings) -> None:
    @flow
    def pipeline() -> int:
        return frame(3).result().shape[0]

    run = get_flow_run(pipeline.run().id)

    record = by_key(run)["frame-0"]
    assert run.state == "succeeded"
    assert run.start_time is not None
    assert run.end_time is not None
    assert (record.state, record.attempts, record.kind) == ("succeeded", 1, "thread")
    assert run.start_time <= record.start_time <= record.end_time <= run.end_time
    assert record.resources == {"cpus": 1.0, "memory": 0.0, "gpus": 0.0}
    assert record.flow_run_id == run.id
    assert [r.id for r in list_flow_runs("pipeline")] == [run.id]


def test_prints_and_logging_are_captured_per_task(settings: Settings, stores: Stores) -> None:
    @task
    def chatty(name: str) -> None:
        print(f"hello from {name}")
        print("no newline at the end", end="")
        sys.stderr.write(f"warning from {name}\n")
        get_logger().info("logged by %s", name)
        logging.getLogger("some.library").warning("library says hi")

    @flow
    def pipeline() -> None:
        chatty.map(["a", "b"])

    run = pipeline.run()

    lines = stores.flows.read_task_logs(run.id, task_key="chatty-0[1]")
    assert [(x.stream, x.text) for x in lines if x.stream != "log"] == [
        ("stdout", "hello from b"),
        ("stderr", "warning from b"),
        ("stdout", "no newline at the end"),
    ]
    logged = [x.text for x in lines if x.stream == "log"]
    assert logged == ["INFO shipyard.task: logged by b", "WARNING some.library: library says hi"]
    assert len(stores.flows.read_task_logs(run.id)) == 2 * len(lines)


def test_logs_can_be_tailed_while_the_task_runs(settings: Settings, stores: Stores) -> None:
    release = threading.Event()

    @task
    def long_running() -> None:
        print("started")
        release.wait(10)
        print("finished")

    @flow
    def pipeline() -> None:
        long_running()

    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        seen: list[str] = []
        while time.monotonic() < deadline and not seen:
            running = stores.flows.list_flow_runs("pipeline", states=["running"])
            if running:
                seen = [x.text for x in stores.flows.read_task_logs(running[0].id)]
            time.sleep(0.05)
        assert seen == ["started"]
        assert running[0].tasks == ()
        assert by_key(stores.flows.get_flow_run(running[0].id))["long_running-0"].state == "running"
    finally:
        release.set()
        runner.join()


def test_a_task_returning_what_its_serializer_cannot_store_fails_clearly(settings: Settings) -> None:
    @task
    def lock() -> object:
        return threading.Lock()

    @task
    def generator() -> object:
        return (i for i in range(3))

    @flow
    def pipeline() -> None:
        lock()
        generator()

    run = pipeline.run()

    tasks = by_key(run)
    assert run.state == "failed"
    for key, kind in (("lock-0", "_thread.lock"), ("generator-0", "builtins.generator")):
        assert tasks[key].state == "failed"
        assert tasks[key].output is None
        assert f"is a {kind} that serializer 'cloudpickle' cannot store" in (tasks[key].error or "")


def test_missing_or_mistyped_parameters_are_named_and_nothing_is_recorded(settings: Settings, stores: Stores) -> None:
    @flow
    def pipeline(day: str, lrs: list[float] = [0.1]) -> None:  # noqa: B006 - the default is never mutated
        return None

    with pytest.raises(InvalidInputError, match="missing required parameter 'day' \\(str\\)") as missing:
        pipeline.run()
    with pytest.raises(InvalidInputError, match="parameter 'day' of flow 'pipeline' must be str, got 3") as typed:
        pipeline.run(day=3)
    with pytest.raises(InvalidInputError, match="must be list\\[float\\], got \\['x'\\]"):
        pipeline(day="d", lrs=["x"])
    with pytest.raises(InvalidInputError, match="has no parameter 'dya'; its parameters are: day, lrs"):
        pipeline.run(dya="2026-01-01")

    assert (missing.value.field, typed.value.field) == ("day", "day")
    assert stores.flows.list_flow_runs() == []
    assert stores.flows.list_flows() == []
    assert stores.runs.count_runs() == 0


def test_a_flow_run_is_linked_to_a_tracking_run_that_tasks_nest_under(settings: Settings, stores: Stores) -> None:
    @task
    def train() -> str:
        outer = active_run()
        assert outer is not None
        with start_run(name="inner") as inner:
            inner.log_metric("auc", 0.9)
            return inner.id

    @task(track=True)
    def tracked() -> str:
        current = active_run()
        assert current is not None
        return current.id

    @flow
    def pipeline() -> list[str]:
        return [train().result(), tracked().result()]

    run = pipeline.run()

    assert run.tracking_run_id is not None
    flow_run = stores.runs.get_run(run.tracking_run_id)
    assert flow_run.tags["shipyard.flow_run_id"] == run.id
    assert flow_run.status == "finished"
    inner = stores.runs.get_run(run.result[0])
    assert inner.parent_run_id == run.tracking_run_id
    tracked_record = by_key(run)["tracked-0"]
    assert tracked_record.tracking_run_id == run.result[1]
    assert stores.runs.get_run(run.result[1]).parent_run_id == run.tracking_run_id


def test_cancel_stops_a_running_flow(settings: Settings) -> None:
    started = threading.Event()

    @task
    def wait_a_bit(i: int) -> int:
        started.set()
        time.sleep(0.3)
        return i

    @flow
    def pipeline() -> list[int]:
        return [wait_a_bit(i).result() for i in range(50)]

    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(pipeline.run()))
    runner.start()
    assert started.wait(10)
    running = list_flow_runs("pipeline", states=["running"])
    assert len(running) == 1
    assert cancel_flow_run(running[0].id).cancel_requested
    runner.join(30)

    run = result[0]
    assert run.state == "cancelled"  # type: ignore[attr-defined]
    states = {t.state for t in run.tasks}  # type: ignore[attr-defined]
    assert "cancelled" in states
    assert len(run.tasks) < 50  # type: ignore[attr-defined]
