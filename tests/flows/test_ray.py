"""The same flow code on the Ray executor: resources become num_cpus/num_gpus/memory."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from shipyard.config import Settings
from shipyard.flows import Resources, flow, get_flow_run, task
from shipyard.testing import in_ci
from tests.flows.conftest import by_key

pytestmark = pytest.mark.ray

try:
    import ray
except ImportError:  # pragma: no cover - depends on the environment
    ray = None


@task
def node_id() -> str:
    return str(ray.get_runtime_context().get_node_id())


@flow
def where() -> str:
    return node_id().result()


def test_executor_ray_starts_ray_once_and_reuses_it_for_later_runs(settings: Settings) -> None:
    """Runs first in this module: no Ray is running yet, so the executor starts its own."""
    if ray is None:
        pytest.skip("ray is not installed: pip install 'shipyard[ray]'")
    assert not ray.is_initialized()
    try:
        first = where.with_options(executor="ray").run()
        assert ray.is_initialized()  # kept after the run, for the next one
        second = where.with_options(executor="ray").run()
        assert first.state == second.state == "succeeded"
        assert first.result == second.result  # the same Ray node: not a second Ray start
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    if ray is None:
        if in_ci():
            pytest.fail("ray is not installed (CI=true: the ray extra must be installed)")
        pytest.skip("ray is not installed: pip install 'shipyard[ray]'")
    # address="local": always a new local Ray, never a cluster some other process left running
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@task(resources=Resources(cpus=1, memory="50MB"))
def numbers(n: int) -> list[int]:
    return list(range(n))


@task(retries=1, retry_delay=0)
def square(x: int) -> dict[str, int]:
    print(f"square {x} in {os.getpid()}")
    return {"value": x * x, "pid": os.getpid()}


@task
def total(parts: list[dict[str, int]]) -> int:
    return sum(p["value"] for p in parts)


@flow
def squares(n: int = 4) -> int:
    return total(square.map(numbers(n))).result()


def test_the_same_flow_runs_locally_and_on_ray(local_ray: None, settings: Settings) -> None:
    local = squares.run(n=5)
    on_ray = squares.with_options(executor="ray").run(n=5)

    assert local.result == on_ray.result == 30
    assert on_ray.state == "succeeded"
    assert on_ray.executor == "ray"
    assert {t.kind for t in on_ray.tasks} == {"ray"}
    assert all(t.state == "succeeded" for t in on_ray.tasks)
    assert by_key(on_ray)["numbers-0"].resources["memory"] == 50_000_000
    from shipyard.flows.api import resolve_stores

    logs = resolve_stores().flows.read_task_logs(on_ray.id, task_key="square-0[3]")
    assert [line.text.split(" in ")[0] for line in logs] == ["square 3"]
    assert get_flow_run(on_ray.id).result == 30


def test_ray_tasks_fail_retry_and_time_out_like_local_ones(local_ray: None, settings: Settings) -> None:
    @task(timeout=1.0)
    def sleepy() -> None:
        import time

        time.sleep(30)

    @task
    def broken() -> None:
        raise ValueError("broken on ray")

    @flow
    def trouble() -> None:
        sleepy()
        broken()

    run = trouble.with_options(executor="ray").run()

    tasks = by_key(run)
    assert run.state == "failed"
    assert "exceeded its timeout of 1 s; its Ray task was cancelled" in (tasks["sleepy-0"].error or "")
    assert "ValueError: broken on ray" in (tasks["broken-0"].error or "")


def test_a_task_needing_more_than_the_cluster_stays_within_ray_resources(local_ray: None, settings: Settings) -> None:
    @task(resources=Resources(cpus=2))
    def wide(i: int) -> int:
        return i

    @flow
    def fan() -> list[int]:
        return wide.map([1, 2, 3]).result()

    run = fan.with_options(executor="ray").run()

    spans = sorted((t.start_time, t.end_time) for t in run.tasks)
    assert run.result == [1, 2, 3]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # 2 of 2 CPUs each: Ray never ran two at once


def test_ray_timeouts_and_running_count_from_when_a_task_starts_not_when_it_queues(
    local_ray: None, settings: Settings
) -> None:
    @task(timeout=1.5, resources=Resources(cpus=2))
    def hold(i: int) -> int:
        import time

        time.sleep(0.6)  # three of these take 1.8 s in turn on 2 CPUs: the last waits 1.2 s in Ray's queue
        return i

    @flow
    def queue() -> list[int]:
        return hold.map([1, 2, 3]).result()

    run = queue.with_options(executor="ray").run()

    assert run.state == "succeeded", run.error
    spans = sorted((t.start_time, t.end_time) for t in run.tasks)
    assert all(end - start < 1.5 for start, end in spans)
