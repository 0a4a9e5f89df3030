"""Task options: retries with backoff, timeouts, cache, resources, tag limits, process tasks."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.flows import LocalExecutor, Resources, flow, task
from shipyard.flows._loader import load_module
from shipyard.flows._nodes import retry_delay
from tests.flows.conftest import by_key


def test_a_task_that_succeeds_on_its_third_attempt(settings: Settings) -> None:
    calls: list[float] = []

    @task(retries=3, retry_delay=0.05, retry_backoff=2)
    def flaky() -> str:
        calls.append(time.time())
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)} failed")
        return "ok"

    @flow
    def pipeline() -> str:
        return flaky().result()

    run = pipeline.run()

    record = by_key(run)["flaky-0"]
    assert run.state == "succeeded"
    assert run.result == "ok"
    assert record.state == "succeeded"
    assert record.attempts == 3
    assert record.error is None
    assert calls[1] - calls[0] >= 0.05
    assert calls[2] - calls[1] >= 0.1


def test_retries_give_up_with_the_last_error(settings: Settings) -> None:
    @task(retries=1, retry_delay=0)
    def always() -> None:
        raise RuntimeError("still broken")

    @flow
    def pipeline() -> None:
        always()

    run = pipeline.run()

    record = by_key(run)["always-0"]
    assert (record.state, record.attempts) == ("failed", 2)
    assert "after 2 attempts" in (run.error or "")
    assert "RuntimeError: still broken" in (record.error or "")


def test_retry_delays_grow_exponentially_and_jitter_stays_in_bounds() -> None:
    plain = task(retry_delay=0.1, retry_backoff=2)(lambda: None)
    assert [round(retry_delay(plain, n), 6) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    listed = task(retry_delay=[1, 5])(lambda: None)
    assert [retry_delay(listed, n) for n in (1, 2, 3)] == [1, 5, 5]
    jittery = task(retry_delay=1.0, retry_backoff=1, retry_jitter=0.5)(lambda: None)
    assert all(0.5 <= retry_delay(jittery, 1) <= 1.5 for _ in range(50))


def test_a_thread_task_over_its_timeout_fails_with_a_clear_message(settings: Settings) -> None:
    release = threading.Event()

    @task(timeout=0.2)
    def slow() -> str:
        release.wait(10)
        return "late"

    @flow
    def pipeline() -> str:
        return slow().result()

    try:
        run = pipeline.run()
    finally:
        release.set()

    record = by_key(run)["slow-0"]
    assert record.state == "failed"
    assert "task 'slow-0' exceeded its timeout of 0.2 s" in (record.error or "")
    assert run.state == "failed"
    assert record.end_time is not None
    assert record.start_time is not None
    assert record.end_time - record.start_time >= 0.2


def test_a_process_task_over_its_timeout_is_killed(settings: Settings, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    @task(timeout=1.0, kind="process")
    def stuck(path: str) -> None:
        Path(path).write_text(str(os.getpid()))
        time.sleep(60)

    @flow
    def pipeline() -> None:
        stuck(str(pid_file))

    run = pipeline.run()

    record = by_key(run)["stuck-0"]
    assert record.state == "failed"
    assert "its worker process was killed" in (record.error or "")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_process_tasks_return_values_and_capture_their_output(settings: Settings) -> None:
    @task(kind="process")
    def in_process(x: int) -> dict[str, int]:
        print("working on", x)
        return {"pid": os.getpid(), "x": x * 3}

    @flow
    def pipeline() -> list[dict[str, int]]:
        return in_process.map([1, 2]).result()

    run = pipeline.run()

    assert run.state == "succeeded"
    assert [r["x"] for r in run.result] == [3, 6]
    assert all(r["pid"] != os.getpid() for r in run.result)
    assert all(t.kind == "process" for t in run.tasks)
    from shipyard.flows.api import resolve_stores

    lines = resolve_stores().flows.read_task_logs(run.id, task_key="in_process-0[1]")
    assert [(line.stream, line.text) for line in lines] == [("stdout", "working on 2")]


CODE_V1 = """
from shipyard.flows import task

CALLS = []

@task(cache=True)
def compute(x: int) -> int:
    CALLS.append(x)
    return x * 10
"""


def test_cache_hits_on_a_rerun_and_misses_once_the_code_changes(settings: Settings, tmp_path: Path) -> None:
    v1_file = tmp_path / "v1.py"
    v1_file.write_text(CODE_V1)
    v2_file = tmp_path / "v2.py"
    v2_file.write_text(CODE_V1.replace("x * 10", "x * 100"))
    v1, v2 = load_module(v1_file), load_module(v2_file)

    def pipeline_with(compute_task: object) -> object:
        @flow(name="cached")
        def pipeline(x: int) -> int:
            return compute_task(x).result()  # type: ignore[operator]

        return pipeline

    first = pipeline_with(v1.compute).run(x=4)
    second = pipeline_with(v1.compute).run(x=4)
    other_input = pipeline_with(v1.compute).run(x=5)
    changed = pipeline_with(v2.compute).run(x=4)
    refreshed = pipeline_with(v1.compute.with_options(refresh=True)).run(x=4)

    assert (first.result, second.result, changed.result) == (40, 40, 400)
    assert by_key(first)["compute-0"].state == "succeeded"
    hit = by_key(second)["compute-0"]
    assert hit.state == "cached"
    assert hit.reused_from == by_key(first)["compute-0"].id
    assert hit.output == by_key(first)["compute-0"].output
    assert by_key(other_input)["compute-0"].state == "succeeded"
    assert by_key(changed)["compute-0"].state == "succeeded"
    assert by_key(refreshed)["compute-0"].state == "succeeded"
    assert v1.CALLS == [4, 5, 4]
    assert v2.CALLS == [4]


def test_cache_entries_expire(settings: Settings) -> None:
    calls: list[int] = []

    @task(cache=True, cache_expiration=0.2)
    def compute(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def pipeline() -> int:
        return compute(1).result()

    pipeline()
    pipeline()
    time.sleep(0.3)
    pipeline()

    assert calls == [1, 1]


def test_four_tasks_needing_all_cpus_never_overlap(settings: Settings) -> None:
    @task(resources=Resources(cpus=2))
    def heavy(i: int) -> int:
        time.sleep(0.05)
        return i

    @flow
    def pipeline() -> list[int]:
        return heavy.map([1, 2, 3, 4]).result()

    run = pipeline.with_options(executor=LocalExecutor(cpus=2)).run()

    assert run.result == [1, 2, 3, 4]
    spans = sorted((t.start_time, t.end_time) for t in run.tasks)
    assert len(spans) == 4
    assert all(t.resources["cpus"] == 2 for t in run.tasks)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end


def test_tasks_that_fit_together_do_run_together(settings: Settings) -> None:
    barrier = threading.Barrier(2, timeout=5)

    @task(resources=Resources(cpus=1, memory="1GB"))
    def half(i: int) -> int:
        barrier.wait()
        return i

    @flow
    def pipeline() -> list[int]:
        return half.map([1, 2]).result()

    assert pipeline.with_options(executor=LocalExecutor(cpus=2, memory="2GB")).run().result == [1, 2]


def test_a_task_needing_more_than_the_machine_fails_clearly(settings: Settings) -> None:
    @task(resources=Resources(cpus=1, gpus=1))
    def needs_gpu() -> None:
        return None

    @flow
    def pipeline() -> None:
        needs_gpu()

    run = pipeline.with_options(executor=LocalExecutor(cpus=2, gpus=0)).run()

    assert run.state == "failed"
    assert "needs 1 gpus but the local executor has 0 gpus in all" in (run.error or "")


def test_memory_sizes_parse_and_bad_ones_are_named() -> None:
    assert Resources(memory="512MB").memory_bytes == 512_000_000
    assert Resources(memory="4GB").memory_bytes == 4_000_000_000
    assert Resources(memory="1GiB").memory_bytes == 2**30
    assert Resources(memory=1024).memory_bytes == 1024
    with pytest.raises(InvalidInputError, match="memory '4 gigs' is not a size") as info:
        Resources(memory="4 gigs")
    assert info.value.field == "memory"
    with pytest.raises(InvalidInputError, match="cpus must be a number >= 0"):
        Resources(cpus=-1)


def test_bad_task_options_are_refused_at_decoration() -> None:
    with pytest.raises(InvalidInputError, match="kind of task 'f' must be one of thread, process"):
        task(kind="fiber", name="f")(lambda: None)
    with pytest.raises(InvalidInputError, match="retries"):
        task(retries=-1)(lambda: None)
    with pytest.raises(InvalidInputError, match="timeout"):
        task(timeout=0)(lambda: None)


def test_tag_limits_cap_concurrent_tasks_of_a_tag(settings: Settings) -> None:
    @task(tags=["db"], resources=Resources(cpus=0))
    def query(i: int) -> int:
        time.sleep(0.03)
        return i

    @flow(tag_limits={"db": 1})
    def pipeline() -> list[int]:
        return query.map([1, 2, 3]).result()

    run = pipeline.run()

    spans = sorted((t.start_time, t.end_time) for t in run.tasks)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end
    assert all(t.tags == ("db",) for t in run.tasks)
