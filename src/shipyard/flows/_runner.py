"""The orchestration of one flow run: task calls become nodes, nodes become attempts.

A node starts when every future it was given is done: it is skipped if one failed,
reused if resume or the cache has its output for the same inputs, and otherwise sent to
the executor, retried with backoff when an attempt fails. Ready nodes are started from a
per-thread work queue, so a long chain of cached tasks never deepens the stack.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import Context
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows._attempt import Attempt, Outcome, TrackSpec, describe
from shipyard.flows._cache import cache_key, input_hash
from shipyard.flows._graph import MapFuture, TaskFuture, Waitable, check_owner, find_waitables, resolve
from shipyard.flows._nodes import (
    Ids,
    LazyValue,
    Node,
    TagLimits,
    add_wait_for,
    elements,
    retry_delay,
    reusable,
    stored_loader,
    unwrap,
)
from shipyard.flows._protocols import Executor, Launch, TaskSpec
from shipyard.flows._recorder import Recorder
from shipyard.flows._records import TaskRecords
from shipyard.flows._timers import Timers
from shipyard.store import Stores
from shipyard.store.entities import TaskRun, ValueRef

# Attempts handed to the executor in one go while a fan-out is being added.
_LAUNCH_BATCH = 64


class Runner:
    """Orchestrates the DAG of one flow run: when each task call starts, is reused, retried or settled.

    What it decides is written down by its :class:`TaskRecords` (records, values, log
    lines); per-tag concurrency is counted by a :class:`TagLimits`.
    """

    def __init__(
        self,
        *,
        flow_run_id: str,
        stores: Stores,
        executor: Executor,
        recorder: Recorder,
        previous: Mapping[str, TaskRun],
        tag_limits: Mapping[str, int],
        context: Context,
        env: Mapping[str, str],
        tracking_run_id: str | None,
        experiment: str,
    ) -> None:
        self.flow_run_id = flow_run_id
        self.stores = stores
        self.executor = executor
        self.records = TaskRecords(flow_run_id, recorder, executor.name)
        self.previous = previous
        self.context = context
        self.env = dict(env)
        self.tracking_run_id = tracking_run_id
        self.experiment = experiment
        self.failures: list[str] = []
        self.cancelled = False
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self._calls: dict[str, int] = {}
        self._nodes: list[Node] = []
        self._local = threading.local()
        self._timers = Timers("shipyard-retries")
        self._tags = TagLimits(tag_limits)
        self._ids = Ids()

    # called from the flow function ---------------------------------------------------
    def submit(
        self, task: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Sequence[Any]
    ) -> TaskFuture:
        """Add a task call to the DAG; it starts when the futures among its arguments are done."""
        return self._add(task, self._next_key(task.name), args, kwargs, wait_for, ())

    def map(self, task: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Sequence[Any]) -> MapFuture:
        """Add one call per element of the list arguments; lists behind futures are expanded when known."""
        mapped = MapFuture(self._next_key(task.name), self)
        slots: list[tuple[int | str, Any]] = [*enumerate(args), *kwargs.items()]
        deferred = [v for _, v in slots if isinstance(v, Waitable)]
        check_owner(deferred, self, task.name)
        if not deferred:
            self._expand(task, mapped, slots, wait_for)
            return mapped
        with self._lock:
            self._unfinished += 1
        remaining = [len(deferred)]
        lock = threading.Lock()

        def ready() -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            try:
                self._expand(task, mapped, slots, wait_for)
            except Exception as exc:
                message = f"{task.name}.map() could not fan out: {exc}"
                self.failures.append(f"task {mapped.key!r}: {message}")
                mapped._fail(message)
            finally:
                self._done_with_one()

        for waitable in deferred:
            if isinstance(waitable, MapFuture):
                waitable.when_expanded(ready)
            else:
                waitable.add_done_callback(ready)
        return mapped

    def _expand(
        self, task: TaskSpec, mapped: MapFuture, slots: list[tuple[int | str, Any]], wait_for: Sequence[Any]
    ) -> None:
        upstream: list[Waitable] = []
        if any(isinstance(v, Waitable) and v.failed and not isinstance(v, MapFuture) for _, v in slots):
            failed = next(v.key for _, v in slots if isinstance(v, Waitable) and v.failed)
            raise InvalidInputError(f"upstream task {failed!r} did not succeed", field=failed)
        columns: dict[int | str, list[Any]] = {}
        for slot, value in slots:
            items = elements(value)
            if items is not None:
                columns[slot] = items
                if isinstance(value, TaskFuture):
                    upstream.append(value)
        if not columns:
            raise InvalidInputError(
                f"{task.name}.map() needs at least one list argument to map over; pass lists, or call the task",
                field="args",
            )
        lengths = {str(slot): len(items) for slot, items in columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}={n}" for k, n in lengths.items())
            raise InvalidInputError(f"{task.name}.map() got lists of different lengths: {shown}", field="args")
        count = next(iter(lengths.values()))
        children: list[TaskFuture] = []
        for first in range(0, count, _LAUNCH_BATCH):  # start each group as it is added
            with self._batch():
                last = min(first + _LAUNCH_BATCH, count)
                self._add_mapped(task, mapped, slots, columns, range(first, last), wait_for, upstream, children)
        mapped._expand(children)

    def _add_mapped(
        self,
        task: TaskSpec,
        mapped: MapFuture,
        slots: list[tuple[int | str, Any]],
        columns: dict[int | str, list[Any]],
        indices: range,
        wait_for: Sequence[Any],
        upstream: list[Waitable],
        children: list[TaskFuture],
    ) -> None:
        for index in indices:
            row = {slot: columns[slot][index] if slot in columns else unwrap(value) for slot, value in slots}
            args = tuple(row[i] for i in range(len([s for s in slots if isinstance(s[0], int)])))
            kwargs = {k: v for k, v in row.items() if isinstance(k, str)}
            children.append(self._add(task, f"{mapped.key}[{index}]", args, kwargs, wait_for, upstream))

    def _next_key(self, name: str) -> str:
        with self._lock:
            index = self._calls.get(name, 0)
            self._calls[name] = index + 1
        return f"{name}-{index}"

    def _add(
        self,
        task: TaskSpec,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Sequence[Any],
        extra: Sequence[Waitable],
    ) -> TaskFuture:
        bound = task.bind(args, kwargs)
        waits: list[Waitable] = []
        find_waitables(args, waits)
        find_waitables(kwargs, waits)
        add_wait_for(wait_for, waits, task.name)
        waits.extend(extra)
        check_owner(waits, self, task.name)
        future = TaskFuture(key, self)
        previous = self.previous.get(key)
        node = Node(task, key, bound, waits, future, previous.id if previous is not None else self._ids())
        with self._lock:
            self._nodes.append(node)
            self._unfinished += 1
        if previous is None or not reusable(previous):  # a reusable row stays as it is until decided
            self.records.changed(node)
        for waitable in waits:
            waitable.add_done_callback(lambda: self._upstream_done(node))
        self._upstream_done(node)
        return future

    # starting nodes ------------------------------------------------------------------
    def _upstream_done(self, node: Node) -> None:
        with self._lock:
            node.remaining -= 1
            if node.remaining:
                return
        queue: deque[Node] | None = getattr(self._local, "queue", None)
        if queue is not None:
            queue.append(node)
            return
        with self._batch() as queue:
            queue.append(node)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[deque[Node]]:
        """Collect ready nodes and their attempts in this thread; start them on the way out.

        Attempts go to the executor in groups (one lock round trip each), not one by one:
        a fan-out of a thousand calls would otherwise contend with the workers a thousand times.
        """
        if getattr(self._local, "queue", None) is not None:
            yield self._local.queue
            return
        queue: deque[Node] = deque()
        self._local.queue, self._local.launches = queue, []
        try:
            yield queue
        finally:
            try:
                while queue:  # nodes already counted must start, even if the caller failed midway
                    self._start(queue.popleft())
                    if len(self._local.launches) >= _LAUNCH_BATCH:
                        self._submit_launches()
            finally:
                self._submit_launches()
                self._local.queue = self._local.launches = None

    def _submit_launches(self) -> None:
        launches, self._local.launches = self._local.launches or [], []
        if launches:
            self._submit(launches)

    def _submit(self, launches: list[tuple[Node, Launch]]) -> None:
        for index, exc in self.executor.submit_many([launch for _, launch in launches]):
            node = launches[index][0]
            self._release_tags(node)
            self._settle(node, "failed", str(exc), exc)

    def _start(self, node: Node) -> None:
        failed = [w.key for w in node.waits if w.failed]
        if self.cancelled:
            self._settle(node, "cancelled", "cancelled before it started")
        elif failed:
            self._settle(node, "skipped", f"skipped: upstream task {failed[0]!r} did not succeed")
        else:
            try:
                if not self._reuse(node):
                    self._launch(node)
            except Exception as exc:
                self._settle(node, "failed", describe(exc), exc)

    def _reuse(self, node: Node) -> bool:
        task = node.task
        values = {name: resolve(value) for name, value in node.bound.arguments.items()}
        unstored = self.records.inputs(node, values)
        node.bound.arguments.update(values)
        node.input_hash = input_hash(node.inputs, unstored)
        previous = self.previous.get(node.key)
        if previous is not None and reusable(previous):  # one row per task identity: kept, or rewritten
            if previous.input_hash == node.input_hash and previous.output is not None:
                node.state, node.output, node.attempts = previous.state, previous.output, previous.attempts
                node.start_time, node.end_time = previous.start_time, previous.end_time
                node.reused_from = previous.reused_from
                loader = stored_loader(self.stores, previous.output, task)
                node.kept = True
                self._succeed(node, previous.state, previous.output, loader=loader, record=False)
                return True
            self.records.changed(node)
        if not task.cache or unstored:
            return False
        node.cache_key = cache_key(task.source_hash, node.input_hash)
        if task.refresh:
            return False
        newer = time.time() - task.cache_expiration if task.cache_expiration is not None else None
        hit = self.stores.flows.find_cached_task_run(node.cache_key, newer_than=newer)
        if hit is None or hit.output is None:
            return False
        node.start_time = node.end_time = time.time()
        node.reused_from = hit.id
        self._succeed(node, "cached", hit.output, loader=stored_loader(self.stores, hit.output, task))
        return True

    def _launch(self, node: Node) -> None:
        task = node.task
        if self.cancelled:
            self._settle(node, "cancelled", "cancelled before it started")
            return
        if self._tags.limits and not self._tags.take(node):
            return
        node.attempts += 1
        attempt = Attempt(
            node.key, task.name, task.fn, node.bound.args, node.bound.kwargs, task.kind, task.resources,
            task.timeout, task.serializers, node.attempts, context=self.context, sink=self.records.sink(node),
            env=self.env, track=self._track(task),
        )  # fmt: skip
        node.attempt = attempt
        launch = (
            attempt,
            lambda at: self._started(node, attempt, at),
            lambda out: self._attempt_done(node, attempt, out),
        )
        pending: list[tuple[Node, Launch]] | None = getattr(self._local, "launches", None)
        if pending is not None:
            pending.append((node, launch))
        else:
            self._submit([(node, launch)])

    def _track(self, task: TaskSpec) -> TrackSpec | None:
        if not task.track:
            return None
        return TrackSpec(self.experiment, self.tracking_run_id, self.stores if task.kind == "thread" else None)

    def _started(self, node: Node, attempt: Attempt, at: float) -> None:
        if node.attempt is attempt and not node.settled:
            node.state, node.start_time, node.end_time = "running", at, None
            self.records.changed(node)

    # outcomes --------------------------------------------------------------------------
    def _attempt_done(self, node: Node, attempt: Attempt, outcome: Outcome) -> None:
        self._release_tags(node)
        for stream, text in outcome.logs:
            if attempt.sink is not None:
                attempt.sink(stream, text)
        self.records.flush_lines(node)
        if node.attempt is not attempt or node.settled:
            return
        node.start_time, node.end_time = outcome.start_time, outcome.end_time
        node.tracking_run_id = outcome.tracking_run_id or node.tracking_run_id
        if outcome.ok and outcome.data is not None and outcome.serializer is not None:
            ref = self.records.output(outcome)
            if outcome.has_value:
                self._succeed(node, "succeeded", ref, value=outcome.value)
            else:
                self._succeed(
                    node, "succeeded", ref, loader=LazyValue(outcome.serializer, outcome.data, node.task).load
                )
            return
        error = outcome.error or "failed"
        if self.cancelled:
            self._settle(node, "cancelled", "cancelled while running")
        elif node.attempts <= node.task.retries:
            node.state, node.error = "retrying", error
            self.records.changed(node)
            delay = retry_delay(node.task, node.attempts)
            self._timers.call_later(delay, lambda: self._relaunch(node))
        else:
            tries = f" after {node.attempts} attempts" if node.attempts > 1 else ""
            self._settle(node, "failed", error, outcome.exception, summary=f"task {node.key!r} failed{tries}")

    def _relaunch(self, node: Node) -> None:
        try:
            self._launch(node)
        except Exception as exc:
            self._settle(node, "failed", describe(exc), exc)

    def _succeed(
        self,
        node: Node,
        state: str,
        ref: ValueRef,
        *,
        value: Any = None,
        loader: Callable[[], Any] | None = None,
        record: bool = True,
    ) -> None:
        with self._lock:
            if node.settled:
                return
            node.settled = True
        node.output, node.error = ref, None  # before the state: a snapshot never sees succeeded without output
        node.state = state
        if record:
            self.records.changed(node)
        node.future.ref = ref
        node.future._set_result(state, value, loader)
        self._done_with_one()

    def _settle(
        self, node: Node, state: str, error: str, exception: BaseException | None = None, *, summary: str = ""
    ) -> None:
        with self._lock:
            if node.settled:
                return
            node.settled = True
        node.state, node.error = state, error
        if node.end_time is None or state in ("skipped", "cancelled"):
            node.end_time = time.time()
        self.records.changed(node)
        first_line = error.splitlines()[0] if error else state
        message = f"{summary or f'task {node.key!r} {state}'}: {first_line}"
        if state in ("failed", "crashed"):
            self.failures.append(message)
        node.future._set_failure(state, message, exception)
        self._done_with_one()

    def _done_with_one(self) -> None:
        with self._lock:
            self._unfinished -= 1
            if self._unfinished == 0:
                self._idle.notify_all()

    # whole run -------------------------------------------------------------------------
    def wait(self) -> None:
        """Block until every task call made so far has settled."""
        with self._lock:
            while self._unfinished:
                self._idle.wait()

    def cancel(self) -> None:
        """Cancel what has not finished: queued calls never start, process attempts are killed."""
        self.cancelled = True
        with self._lock:
            live = [n for n in self._nodes if not n.settled]
        waiting = self._tags.drain()
        for node in live:
            attempt = node.attempt
            if attempt is not None and not attempt.finished:
                self.executor.cancel(attempt)
            if attempt is not None or node in waiting:
                self._settle(node, "cancelled", "cancelled while running" if attempt else "cancelled before it started")

    def close(self) -> None:
        """Stop the retry timer thread."""
        self._timers.close()

    def task_runs(self) -> tuple[TaskRun, ...]:
        """Every task run of this flow run as recorded: this run's calls, and earlier rows not called again."""
        with self._lock:
            nodes = list(self._nodes)
        return self.records.task_runs(nodes, self.previous)

    def _release_tags(self, node: Node) -> None:
        for parked in self._tags.release(node):
            self._launch(parked)
