"""The DAG comes from data flow: futures, plain values, containers, map, wait_for, branches."""

from __future__ import annotations

import threading

import pytest

from shipyard.config import Settings
from shipyard.flows import FlowRunError, flow, get_flow_run, task, unmapped
from tests.flows.conftest import by_key


@task
def make(n: int) -> list[int]:
    return list(range(n))


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


def test_a_task_outside_a_flow_is_its_function() -> None:
    assert double(21) == 42
    assert double.fn(4) == 8


def test_fan_out_over_a_list_only_known_at_run_time(settings: Settings) -> None:
    @flow
    def pipeline(n: int) -> int:
        items = make(n)  # a future: its length is unknown when .map is called
        doubled = double.map(items)
        return total(doubled).result()

    run = pipeline.run(n=7)

    assert run.state == "succeeded"
    assert run.result == sum(2 * i for i in range(7))
    tasks = by_key(run)
    children = [k for k in tasks if k.startswith("double-0[")]
    assert len(children) == 7
    assert all(tasks[k].upstream == ("make-0",) for k in children)
    assert set(tasks["total-0"].upstream) == set(children)
    assert get_flow_run(run.id).result == run.result


def test_map_pairs_elements_of_a_mapped_call_and_broadcasts_unmapped(settings: Settings) -> None:
    @flow
    def pipeline() -> list[int]:
        doubled = double.map([1, 2, 3])
        return add.map(doubled, y=unmapped(10)).result()

    run = pipeline.run()

    assert run.result == [12, 14, 16]
    tasks = by_key(run)
    assert tasks["add-0[1]"].upstream == ("double-0[1]",)


def test_map_over_lists_of_different_lengths_is_a_clear_error(settings: Settings) -> None:
    @flow
    def pipeline() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(FlowRunError, match=r"different lengths: 0=2, 1=3"):
        pipeline()


def test_futures_and_plain_values_mix_inside_containers(settings: Settings) -> None:
    @task
    def combine(parts: dict[str, object]) -> list[object]:
        return [parts["a"], *parts["rest"]]

    @flow
    def pipeline() -> list[object]:
        a = double(1)
        b = double(2)
        return combine({"a": a, "rest": [b, 5, (b, "x")]}).result()

    run = pipeline.run()

    assert run.result == [2, 4, 5, (4, "x")]
    assert set(by_key(run)["combine-0"].upstream) == {"double-0", "double-1"}


def test_wait_for_orders_tasks_that_share_no_data(settings: Settings) -> None:
    events: list[str] = []

    @task
    def first() -> None:
        events.append("first")

    @task
    def second() -> None:
        events.append("second")

    @flow
    def pipeline() -> None:
        done = first()
        second(wait_for=[done])

    run = pipeline.run()

    tasks = by_key(run)
    assert events == ["first", "second"]
    assert tasks["second-0"].upstream == ("first-0",)
    assert tasks["second-0"].start_time >= tasks["first-0"].end_time


def test_branches_are_plain_python_on_a_resolved_value(settings: Settings) -> None:
    @flow
    def pipeline(n: int) -> str:
        if total(make(n)).result() > 3:
            return "big"
        return double(1).result() and "small"

    assert pipeline(n=5) == "big"
    small = pipeline.run(n=2)
    assert small.result == "small"
    assert "double-0" in by_key(small)


def test_a_failed_task_skips_its_downstream_and_fails_the_flow(settings: Settings) -> None:
    @task
    def boom(x: int) -> int:
        raise ValueError(f"bad input {x}")

    @flow
    def pipeline() -> int:
        return double(boom(1)).result()

    run = pipeline.run()

    tasks = by_key(run)
    assert run.state == "failed"
    assert "ValueError: bad input 1" in (run.error or "")
    assert tasks["boom-0"].state == "failed"
    assert tasks["double-0"].state == "skipped"
    with pytest.raises(FlowRunError, match="bad input 1"):
        pipeline()


def test_result_re_raises_the_task_exception(settings: Settings) -> None:
    @task
    def boom() -> int:
        raise KeyError("missing")

    seen: list[BaseException] = []

    @flow
    def pipeline() -> None:
        try:
            boom().result()
        except KeyError as exc:
            seen.append(exc)

    pipeline.run()

    assert len(seen) == 1


def test_a_future_of_another_flow_run_is_refused(settings: Settings) -> None:
    kept = []

    @flow
    def first() -> None:
        kept.append(double(1))

    @flow
    def second() -> int:
        return add(kept[0], 1).result()

    first()
    run = second.run()
    assert run.state == "failed"
    assert "from another flow run" in (run.error or "")


def test_wait_for_only_takes_futures_and_bad_task_arguments_are_named(settings: Settings) -> None:
    @flow
    def bad_wait() -> None:
        double(1, wait_for=["not a future"])

    @flow
    def bad_args() -> None:
        add(1)

    assert "wait_for of task 'double' must hold futures" in (bad_wait.run().error or "")
    assert "task 'add' called with bad arguments" in (bad_args.run().error or "")


def test_edges_are_exactly_the_futures_passed_and_each_task_starts_after_its_upstream(settings: Settings) -> None:
    @flow
    def pipeline() -> int:
        a = double(1)  # double-0
        b = add(a, 5)  # add-0 <- double-0
        c = double(b)  # double-1 <- add-0
        d = add(b, c)  # add-1 <- add-0, double-1
        e = total([a, d, 3])  # total-0 <- double-0, add-1: futures inside a list
        f = double(7)  # double-2: independent
        return add(e, f).result()  # add-2 <- total-0, double-2

    run = pipeline.run()

    assert run.result == (2 + 21 + 3) + 14
    tasks = by_key(run)
    assert {key: set(t.upstream) for key, t in tasks.items()} == {
        "double-0": set(),
        "add-0": {"double-0"},
        "double-1": {"add-0"},
        "add-1": {"add-0", "double-1"},
        "total-0": {"double-0", "add-1"},
        "double-2": set(),
        "add-2": {"total-0", "double-2"},
    }
    for task_run in run.tasks:
        for upstream in task_run.upstream:
            assert task_run.start_time >= tasks[upstream].end_time, (task_run.task_key, upstream)
    stored = {t.task_key: set(t.upstream) for t in get_flow_run(run.id).tasks}
    assert stored == {key: set(t.upstream) for key, t in tasks.items()}


def test_threads_run_independent_tasks_concurrently(settings: Settings) -> None:
    barrier = threading.Barrier(2, timeout=5)

    @task
    def meet() -> bool:
        barrier.wait()  # only returns if both tasks are running at the same time
        return True

    @task
    def meet_one(_: object) -> bool:
        return meet.fn()

    @flow
    def pair() -> list[bool]:
        return meet_one.map([1, 2]).result()

    assert pair() == [True, True]


def test_a_flow_called_inside_a_flow_is_its_own_recorded_run(settings: Settings) -> None:
    from shipyard.flows import list_flow_runs
    from shipyard.store import open_stores

    @flow
    def inner(x: int) -> int:
        return double(x).result()

    @flow
    def outer() -> int:
        return inner(x=add(1, 2).result()) + double(1).result()

    run = outer.run()

    assert run.result == 8
    (inner_run,) = list_flow_runs("inner")
    assert inner_run.state == "succeeded"
    runs = open_stores(settings).runs
    assert inner_run.tracking_run_id is not None
    assert runs.get_run(inner_run.tracking_run_id).parent_run_id == run.tracking_run_id
    assert set(by_key(run)) == {"add-0", "double-0"}
