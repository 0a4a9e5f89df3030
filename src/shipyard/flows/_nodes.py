"""The pieces a flow run's DAG is made of: nodes (one per task call) and helpers to start them."""

from __future__ import annotations

import inspect
import itertools
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows import _values
from shipyard.flows._attempt import Attempt
from shipyard.flows._graph import MapFuture, TaskFuture, Waitable, unmapped
from shipyard.flows._protocols import TaskSpec
from shipyard.store import Stores
from shipyard.store.entities import TaskRun, ValueRef

_REUSABLE = ("succeeded", "cached")


class Ids:
    """Unique ids without a system call each: a random prefix per run and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._next = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._next):016x}"


class Node:
    __slots__ = (
        "attempt",
        "attempts",
        "bound",
        "cache_key",
        "created_at",
        "end_time",
        "error",
        "future",
        "id",
        "input_hash",
        "inputs",
        "kept",
        "key",
        "lines",
        "output",
        "remaining",
        "reused_from",
        "settled",
        "start_time",
        "state",
        "task",
        "tracking_run_id",
        "waits",
    )

    def __init__(
        self,
        task: TaskSpec,
        key: str,
        bound: inspect.BoundArguments,
        waits: list[Waitable],
        future: TaskFuture,
        id: str,
    ) -> None:
        self.task = task
        self.key = key
        self.bound = bound
        self.waits = waits
        self.future = future
        self.remaining = len(waits) + 1
        self.id = id
        self.state = "pending"
        self.attempts = 0
        self.created_at = time.time()
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.inputs: dict[str, ValueRef | None] = {}
        self.input_hash = ""
        self.cache_key: str | None = None
        self.output: ValueRef | None = None
        self.error: str | None = None
        self.reused_from: str | None = None
        self.tracking_run_id: str | None = None
        self.attempt: Attempt | None = None
        self.settled = False
        self.kept = False
        self.lines: dict[str, str] | None = None


def reusable(row: TaskRun) -> bool:
    return row.state in _REUSABLE and row.output is not None


class LazyValue:
    """Bytes from another process, deserialized the first time a downstream task needs them."""

    __slots__ = ("data", "serializer", "task")

    def __init__(self, serializer: str, data: bytes, task: TaskSpec) -> None:
        self.serializer, self.data, self.task = serializer, data, task

    def load(self) -> Any:
        from shipyard.flows._serializers import deserialize

        return deserialize(self.serializer, self.data, self.task.serializers)


def stored_loader(stores: Stores, ref: ValueRef, task: TaskSpec) -> Callable[[], Any]:
    return lambda: _values.load(stores, ref, task.serializers)


def elements(value: Any) -> list[Any] | None:
    """The elements to map over, or ``None`` for a value passed whole to every call."""
    if isinstance(value, unmapped):
        return None
    if isinstance(value, MapFuture):
        return list(value.children or ())
    if isinstance(value, TaskFuture):
        resolved = value.value()
        return list(resolved) if isinstance(resolved, list | tuple | range) else None
    if isinstance(value, list | tuple | range):
        return list(value)
    return None


def unwrap(value: Any) -> Any:
    return value.value if isinstance(value, unmapped) else value


def add_wait_for(wait_for: Sequence[Any], into: list[Waitable], task_name: str) -> None:
    for item in wait_for:
        if not isinstance(item, Waitable):
            raise InvalidInputError(
                f"wait_for of task {task_name!r} must hold futures of earlier task calls, got {item!r}",
                field="wait_for",
            )
        into.append(item)


def upstream_keys(waits: Sequence[Waitable]) -> tuple[str, ...]:
    keys: list[str] = []
    for waitable in waits:
        if isinstance(waitable, MapFuture) and waitable.children is not None:
            keys.extend(child.key for child in waitable.children)
        else:
            keys.append(waitable.key)
    return tuple(dict.fromkeys(keys))


def retry_delay(task: TaskSpec, attempt: int) -> float:
    """Seconds before retry number ``attempt``: explicit list, or delay x backoff^(n-1), with jitter."""
    delay = task.retry_delay
    if isinstance(delay, int | float):
        base = float(delay) * task.retry_backoff ** (attempt - 1)
    else:
        delays = list(delay)
        base = float(delays[min(attempt - 1, len(delays) - 1)]) if delays else 0.0
    if task.retry_jitter:
        base *= 1 + random.uniform(-task.retry_jitter, task.retry_jitter)
    return max(base, 0.0)


class TagLimits:
    """Caps on concurrently running task calls per tag (a flow's ``tag_limits``) within one run."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._running: dict[str, int] = {}
        self._waiting: deque[Node] = deque()
        self._lock = threading.Lock()

    def take(self, node: Node) -> bool:
        """Count the node as running under its tags; False (and parked) when a tag is at its limit."""
        limited = [t for t in node.task.tags if t in self.limits]
        with self._lock:
            if any(self._running.get(t, 0) >= self.limits[t] for t in limited):
                self._waiting.append(node)
                return False
            for tag in limited:
                self._running[tag] = self._running.get(tag, 0) + 1
        return True

    def release(self, node: Node) -> list[Node]:
        """The node stopped running: returns the parked nodes, to launch again."""
        limited = [t for t in node.task.tags if t in self.limits]
        if not limited:
            return []
        with self._lock:
            for tag in limited:
                self._running[tag] -= 1
            waiting, self._waiting = list(self._waiting), deque()
        return waiting

    def drain(self) -> list[Node]:
        """Every parked node, which will not be launched any more (the run is cancelled)."""
        with self._lock:
            waiting, self._waiting = list(self._waiting), deque()
        return waiting
