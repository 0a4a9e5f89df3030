"""The DAG: futures, how they are found inside arguments, and the order of recorded task runs.

Edges come only from values: a task call's upstream tasks are the futures among its
arguments (inside lists, tuples, sets and dicts too) and in ``wait_for``. A future exists
only once the call that makes it has happened, so a task can never wait on itself or on
a later call: the graph cannot have a cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows.models import TaskRunError
from shipyard.store.entities import TaskRun, ValueRef

_FAILED = frozenset({"failed", "skipped", "cancelled", "crashed"})


class Waitable:
    """Something a task call can wait for: a task's future or a mapped call's futures."""

    __slots__ = ("_callbacks", "_done", "_event", "_lock", "key", "owner")

    def __init__(self, key: str, owner: object) -> None:
        self.key = key
        self.owner = owner
        self._lock = threading.Lock()
        self._event: threading.Event | None = None  # made only if someone waits: most never do
        self._done = False
        self._callbacks: list[Callable[[], None]] = []

    @property
    def failed(self) -> bool:
        """True once it is done without a value."""
        raise NotImplementedError

    def done(self) -> bool:
        """True once it has a value or has failed."""
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or ``timeout`` seconds); True when done."""
        if self._done:
            return True
        with self._lock:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` when done (at once if it already is)."""
        with self._lock:
            if not self._done:
                self._callbacks.append(fn)
                return
        fn()

    def _mark_done(self) -> None:
        with self._lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
            event = self._event
        if event is not None:
            event.set()
        for fn in callbacks:
            fn()

    def value(self) -> Any:
        """The value, for a done waitable that did not fail."""
        raise NotImplementedError


class TaskFuture(Waitable):
    """The future value of one task call: ``result()`` blocks until the task is done.

    Example:
        >>> total = add(1, 2)          # inside a flow: returns at once  # doctest: +SKIP
        >>> total.result()             # 3  # doctest: +SKIP
    """

    __slots__ = ("_error", "_exception", "_loader", "_value", "ref", "state")

    def __init__(self, key: str, owner: object) -> None:
        super().__init__(key, owner)
        self.state = "pending"
        self.ref: ValueRef | None = None
        self._value: Any = None
        self._loader: Callable[[], Any] | None = None
        self._exception: BaseException | None = None
        self._error = ""

    def __repr__(self) -> str:
        return f"TaskFuture({self.key!r}, state={self.state!r})"

    @property
    def task_key(self) -> str:
        """The task's identity in the DAG: ``name-call_index`` (``[i]`` for a mapped element)."""
        return self.key

    @property
    def failed(self) -> bool:
        return self._done and self.state in _FAILED

    def result(self, timeout: float | None = None) -> Any:
        """The task's return value; re-raises its exception, or :class:`TaskRunError` when it has none."""
        if not self.wait(timeout):
            raise TimeoutError(f"task {self.key!r} is still {self.state} after {timeout} s")
        if self.state in _FAILED:
            if self._exception is not None:
                raise self._exception
            raise TaskRunError(self._error or f"task {self.key!r} is {self.state}", task_key=self.key, state=self.state)
        return self.value()

    def value(self) -> Any:
        if self._loader is not None:
            with self._lock:
                if self._loader is not None:
                    self._value, self._loader = self._loader(), None
        return self._value

    def _set_result(self, state: str, value: Any = None, loader: Callable[[], Any] | None = None) -> None:
        self.state, self._value, self._loader = state, value, loader
        self._mark_done()

    def _set_failure(self, state: str, error: str, exception: BaseException | None = None) -> None:
        self.state, self._error, self._exception = state, error, exception
        self._mark_done()


class MapFuture(Waitable):
    """The futures of a mapped call, one per element; known once the mapped lists are.

    Iterating or indexing blocks until the fan-out is known; passed to another task it is
    the list of all results; ``.map`` over it pairs element with element.
    """

    __slots__ = ("_expanded", "_failure", "_on_expanded", "children")

    def __init__(self, key: str, owner: object) -> None:
        super().__init__(key, owner)
        self.children: list[TaskFuture] | None = None
        self._expanded = threading.Event()
        self._failure: str | None = None
        self._on_expanded: list[Callable[[], None]] = []

    def when_expanded(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once the element futures are known (or the fan-out failed)."""
        with self._lock:
            if not self._expanded.is_set():
                self._on_expanded.append(fn)
                return
        fn()

    def _fire_expanded(self) -> None:
        with self._lock:
            self._expanded.set()
            callbacks, self._on_expanded = self._on_expanded, []
        for fn in callbacks:
            fn()

    def __repr__(self) -> str:
        count = "?" if self.children is None else len(self.children)
        return f"MapFuture({self.key!r}, tasks={count})"

    @property
    def failed(self) -> bool:
        return self._done and (self._failure is not None or any(c.failed for c in self.children or ()))

    @property
    def futures(self) -> list[TaskFuture]:
        """One future per element (blocks until the mapped lists are known)."""
        self._expanded.wait()
        if self._failure is not None and self.children is None:
            raise TaskRunError(self._failure, task_key=self.key, state="failed")
        return list(self.children or ())

    def __iter__(self) -> Iterator[TaskFuture]:
        return iter(self.futures)

    def __len__(self) -> int:
        return len(self.futures)

    def __getitem__(self, index: int) -> TaskFuture:
        return self.futures[index]

    def result(self, timeout: float | None = None) -> list[Any]:
        """Every element's value, in order; raises the first failure."""
        if not self.wait(timeout):
            raise TimeoutError(f"mapped task {self.key!r} is still running after {timeout} s")
        return [child.result() for child in self.futures]

    def value(self) -> list[Any]:
        return [child.value() for child in self.children or ()]

    def _expand(self, children: list[TaskFuture]) -> None:
        self.children = children
        self._fire_expanded()
        remaining = [len(children)]
        if not children:
            self._mark_done()
            return
        lock = threading.Lock()

        def child_done() -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._mark_done()

        for child in children:
            child.add_done_callback(child_done)

    def _fail(self, error: str) -> None:
        self._failure = error
        self._fire_expanded()
        self._mark_done()


class unmapped:
    """Pass a list to every element of a ``.map`` call instead of mapping over it.

    Example:
        >>> train.map(lr=[0.1, 0.01], data=unmapped(rows))  # doctest: +SKIP
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def find_waitables(value: Any, found: list[Waitable]) -> None:
    """Append every future inside ``value`` (lists, tuples, sets, dict values and keys)."""
    if isinstance(value, Waitable):
        found.append(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            find_waitables(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            find_waitables(key, found)
            find_waitables(item, found)
    elif isinstance(value, unmapped):
        find_waitables(value.value, found)


def resolve(value: Any) -> Any:
    """``value`` with every future replaced by its result (containers rebuilt, others untouched)."""
    if isinstance(value, Waitable):
        return value.value()
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if isinstance(value, tuple):
        items = [resolve(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, set | frozenset):
        return type(value)(resolve(v) for v in value)
    if isinstance(value, dict):
        return type(value)((resolve(k), resolve(v)) for k, v in value.items()) if value else value
    return value


def check_owner(waitables: Sequence[Waitable], runner: object, task_name: str) -> None:
    """Refuse futures made by another flow run: they are not part of this DAG."""
    for waitable in waitables:
        if waitable.owner is not runner:
            raise InvalidInputError(
                f"task {task_name!r} was given the future of {waitable.key!r} from another flow run; "
                "pass its .result() instead",
                field=waitable.key,
            )


def topological(tasks: Sequence[TaskRun]) -> list[TaskRun]:
    """Recorded task runs ordered so that every task comes after the tasks it waited for."""
    by_key = {t.task_key: t for t in tasks}
    order: list[TaskRun] = []
    seen: set[str] = set()

    def visit(task: TaskRun) -> None:
        stack = [(task, iter(task.upstream))]
        seen.add(task.task_key)
        while stack:
            node, upstream = stack[-1]
            for key in upstream:
                parent = by_key.get(key)
                if parent is not None and key not in seen:
                    seen.add(key)
                    stack.append((parent, iter(parent.upstream)))
                    break
            else:
                stack.pop()
                order.append(node)

    for task in sorted(tasks, key=lambda t: (t.created_at, t.task_key)):
        if task.task_key not in seen:
            visit(task)
    return order
