"""What a flow run's task calls leave behind: task run records, their values and log lines.

The runner decides what happens to each task call; this is how that gets written down.
Records go through the run's :class:`~shipyard.flows._recorder.Recorder`, built at flush
time from the node as it is then.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows import _values
from shipyard.flows._attempt import Outcome
from shipyard.flows._capture import Sink
from shipyard.flows._graph import TaskFuture
from shipyard.flows._nodes import Node, upstream_keys
from shipyard.flows._recorder import Recorder
from shipyard.flows._serializers import serialize
from shipyard.store.entities import TaskLogLine, TaskRun, ValueRef


class TaskRecords:
    """Writes the records of one flow run's task calls."""

    def __init__(self, flow_run_id: str, recorder: Recorder, executor_name: str) -> None:
        self.flow_run_id = flow_run_id
        self.recorder = recorder
        self.executor_name = executor_name

    def changed(self, node: Node) -> None:
        """Note that a node changed; its record is written at the next flush."""
        self.recorder.task(node.id, partial(self.snapshot, node))

    def inputs(self, node: Node, values: Mapping[str, Any]) -> dict[str, str]:
        """Store each argument's value as an input ref; returns the type names of those that cannot be stored."""
        unstored: dict[str, str] = {}
        for name, raw in node.bound.arguments.items():
            if isinstance(raw, TaskFuture) and raw.ref is not None:
                node.inputs[name] = raw.ref
                continue
            value = values[name]
            try:
                serializer, data = serialize(value, node.task.serializers, what=f"argument {name!r}")
            except InvalidInputError:
                node.inputs[name] = None
                unstored[name] = f"{type(value).__module__}.{type(value).__qualname__}"
                continue
            ref = _values.make_ref(serializer, data, value)
            self.recorder.value(ref.digest, data)
            node.inputs[name] = ref
        return unstored

    def output(self, outcome: Outcome) -> ValueRef:
        """Store a successful outcome's bytes; returns their ref."""
        assert outcome.data is not None
        assert outcome.serializer is not None
        ref = _values.make_ref(outcome.serializer, outcome.data, outcome.value, outcome.type_name)
        self.recorder.value(ref.digest, outcome.data)
        return ref

    def sink(self, node: Node) -> Sink:
        """Where the node's output streams go: complete lines become log records."""

        def sink(stream: str, text: str) -> None:
            if node.lines is None:
                node.lines = {}
            pending = node.lines.get(stream, "") + text
            *complete, rest = pending.split("\n")
            node.lines[stream] = rest
            now = time.time()
            for line in complete:
                self.recorder.log(TaskLogLine(self.flow_run_id, node.id, node.key, stream, line, now))

        return sink

    def flush_lines(self, node: Node) -> None:
        """Record what is left of unfinished lines once an attempt ends."""
        if not node.lines:
            return
        now = time.time()
        for stream, rest in node.lines.items():
            if rest:
                self.recorder.log(TaskLogLine(self.flow_run_id, node.id, node.key, stream, rest, now))
        node.lines = {}

    def task_runs(self, nodes: Iterable[Node], previous: Mapping[str, TaskRun]) -> tuple[TaskRun, ...]:
        """The run's task runs: these nodes as they are now, and earlier rows not called again."""
        rows: dict[str, TaskRun] = dict(previous)
        for node in nodes:
            if not node.kept:
                rows[node.key] = self.snapshot(node)
        return tuple(sorted(rows.values(), key=lambda t: (t.created_at, t.task_key)))

    def snapshot(self, node: Node) -> TaskRun:
        """The node's record as of now."""
        task = node.task
        return TaskRun(
            id=node.id,
            flow_run_id=self.flow_run_id,
            task_key=node.key,
            name=task.name,
            state=node.state,
            attempts=node.attempts,
            created_at=node.created_at,
            start_time=node.start_time,
            end_time=node.end_time,
            resources=task.resource_record,
            tags=task.tags,
            upstream=upstream_keys(node.waits),
            inputs=dict(node.inputs),
            input_hash=node.input_hash,
            cache_key=node.cache_key,
            output=node.output,
            error=node.error,
            kind=self.executor_name if self.executor_name != "local" else task.kind,
            reused_from=node.reused_from,
            tracking_run_id=node.tracking_run_id,
            options=task.option_record,
        )
