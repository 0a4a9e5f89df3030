"""``@task`` and ``@flow``: describe work as plain Python; the DAG comes from the values passed.

Inside a flow, calling a task returns a :class:`TaskFuture` at once and the task runs when
the futures among its arguments are done; outside a flow, a task is its plain function.

Example:
    >>> from shipyard.flows import flow, task
    >>> @task(retries=2, retry_delay=1)
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> @flow
    ... def pipeline(n: int = 3) -> int:
    ...     parts = double.map(list(range(n)))
    ...     return sum(parts.result())
    >>> pipeline(n=4)  # doctest: +SKIP
    12
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, overload

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.flows import _loader, _params, _run, _values
from shipyard.flows._cache import source_hash
from shipyard.flows._context import current_runner
from shipyard.flows._graph import MapFuture, TaskFuture
from shipyard.flows._protocols import Executor
from shipyard.flows._resources import Resources
from shipyard.flows._run import LiveRun
from shipyard.flows._serializers import DEFAULT_SERIALIZERS, Serializer
from shipyard.flows.models import FlowRun, FlowRunError
from shipyard.flows.triggers import Schedule, Trigger, as_schedule
from shipyard.store import Stores
from shipyard.store.entities import FlowInfo
from shipyard.tracking.api import HasStores, resolve_stores

TASK_KINDS = ("thread", "process")


@dataclass(frozen=True, slots=True, eq=False)
class Task:
    """A function with how to run it: retries, timeout, cache, resources, tags and kind."""

    fn: Callable[..., Any]
    name: str
    retries: int = 0
    retry_delay: float | Sequence[float] = 0.0
    retry_backoff: float = 2.0
    retry_jitter: float = 0.0
    timeout: float | None = None
    cache: bool = False
    cache_expiration: float | None = None
    refresh: bool = False
    resources: Resources = field(default_factory=Resources)
    tags: tuple[str, ...] = ()
    kind: str = "thread"
    serializers: tuple[Serializer, ...] = DEFAULT_SERIALIZERS
    track: bool = False
    signature: inspect.Signature = field(init=False, repr=False)
    source_hash: str = field(init=False, repr=False)
    resource_record: Mapping[str, float] = field(init=False, repr=False)
    option_record: Mapping[str, Any] = field(init=False, repr=False)
    positional_names: tuple[str, ...] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_task_options(self)
        set_ = object.__setattr__
        signature = inspect.signature(self.fn)
        set_(self, "signature", signature)
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in signature.parameters.values())
        set_(self, "positional_names", tuple(signature.parameters) if plain else None)
        set_(self, "source_hash", source_hash(self.fn) if self.cache else "")
        set_(self, "resource_record", self.resources.as_dict())
        options = {"retries": self.retries, "timeout": self.timeout, "cache": self.cache, "kind": self.kind}
        set_(self, "option_record", options)

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    @property
    def description(self) -> str:
        """The first paragraph of the function's docstring."""
        return (inspect.getdoc(self.fn) or "").split("\n\n", 1)[0]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside a flow: submit and return a :class:`TaskFuture`. Outside: call the function."""
        runner = current_runner.get()
        if runner is None:
            return self.fn(*args, **kwargs)
        wait_for = kwargs.pop("wait_for", ()) if "wait_for" not in self.signature.parameters else ()
        return runner.submit(self, args, kwargs, _as_list(wait_for))

    def map(self, *args: Any, **kwargs: Any) -> MapFuture:
        """One call per element of the list arguments (``unmapped(x)`` passes a list whole).

        Lists may be futures of earlier tasks: the fan-out happens when they are known.
        Outside a flow, a list of plain results.
        """
        runner = current_runner.get()
        wait_for = kwargs.pop("wait_for", ())
        if runner is None:
            raise InvalidInputError(
                f"{self.name}.map() only works inside a flow; call the task in a loop, or from an @flow", field="map"
            )
        return runner.map(self, args, kwargs, _as_list(wait_for))

    def with_options(self, **changes: Any) -> Task:
        """A copy with some options changed (``refresh=True``, ``retries=5``, ...)."""
        return dataclasses.replace(self, **changes)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        """Arguments matched to parameters (defaults filled in), or a clear error."""
        names = self.positional_names
        if names is not None and len(args) == len(names) and not kwargs:
            # The common call: every parameter given by position; inspect's general bind costs 10x more.
            return inspect.BoundArguments(self.signature, dict(zip(names, args, strict=True)))  # type: ignore[arg-type]
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"task {self.name!r} called with bad arguments: {exc}", field=self.name) from exc
        bound.apply_defaults()
        return bound


def _check_task_options(task: Task) -> None:
    if not isinstance(task.retries, int) or isinstance(task.retries, bool) or task.retries < 0:
        raise InvalidInputError(
            f"retries of task {task.name!r} must be an integer >= 0, got {task.retries!r}", field="retries"
        )
    if task.timeout is not None and (not isinstance(task.timeout, int | float) or task.timeout <= 0):
        raise InvalidInputError(
            f"timeout of task {task.name!r} must be seconds > 0, got {task.timeout!r}", field="timeout"
        )
    if task.kind not in TASK_KINDS:
        raise InvalidInputError(
            f"kind of task {task.name!r} must be one of {', '.join(TASK_KINDS)}, got {task.kind!r}", field="kind"
        )
    if not isinstance(task.resources, Resources):
        raise InvalidInputError(
            f"resources of task {task.name!r} must be Resources(cpus=..., memory=..., gpus=...), "
            f"got {task.resources!r}",
            field="resources",
        )
    if task.retry_jitter < 0 or task.retry_jitter > 1:
        raise InvalidInputError(
            f"retry_jitter must be between 0 and 1, got {task.retry_jitter!r}", field="retry_jitter"
        )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


@overload
def task(fn: Callable[..., Any], /) -> Task: ...
@overload
def task(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float | Sequence[float] = 0.0,
    retry_backoff: float = 2.0,
    retry_jitter: float = 0.0,
    timeout: float | dt.timedelta | None = None,
    cache: bool = False,
    cache_expiration: float | dt.timedelta | None = None,
    refresh: bool = False,
    resources: Resources | None = None,
    tags: Sequence[str] = (),
    kind: str = "thread",
    serializers: Sequence[Serializer] | None = None,
    track: bool = False,
) -> Callable[[Callable[..., Any]], Task]: ...
def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Task | Callable[[Callable[..., Any]], Task]:
    """Make a function a task.

    Retry number ``n`` waits ``retry_delay * retry_backoff ** (n - 1)`` seconds, varied by
    ``± retry_jitter`` (a fraction), or the ``n``-th of an explicit list of delays.
    ``cache=True`` reuses the output of an earlier call with the same code and inputs
    (within ``cache_expiration``; ``refresh=True`` recomputes). ``track=True`` gives each
    attempt its own tracking run, a child of the flow run's.
    """

    def make(function: Callable[..., Any]) -> Task:
        opts = dict(options)
        name = opts.pop("name", None) or function.__name__
        for key in ("timeout", "cache_expiration"):
            if isinstance(opts.get(key), dt.timedelta):
                opts[key] = opts[key].total_seconds()
        if opts.get("resources") is None:
            opts.pop("resources", None)
        if opts.get("serializers") is not None:
            opts["serializers"] = tuple(opts["serializers"])
        else:
            opts.pop("serializers", None)
        opts["tags"] = tuple(opts.get("tags", ()))
        return Task(function, name, **opts)

    return make(fn) if fn is not None else make


@dataclass(frozen=True, slots=True, eq=False)
class Flow:
    """A function whose task calls form a DAG, with its schedule, triggers and limits."""

    fn: Callable[..., Any]
    name: str
    schedule: Schedule | None = None
    triggers: tuple[Trigger, ...] = ()
    max_active_runs: int | None = None
    tag_limits: Mapping[str, int] = field(default_factory=dict)
    owners: tuple[str, ...] = ()
    executor: str | Executor | None = None
    experiment: str | None = None
    client: HasStores | None = None

    def __post_init__(self) -> None:
        if self.max_active_runs is not None and (not isinstance(self.max_active_runs, int) or self.max_active_runs < 1):
            raise InvalidInputError(
                f"max_active_runs must be an integer >= 1, got {self.max_active_runs!r}", field="max_active_runs"
            )
        for tag, limit in self.tag_limits.items():
            if not isinstance(limit, int) or limit < 1:
                raise InvalidInputError(
                    f"tag limit of {tag!r} must be an integer >= 1, got {limit!r}", field="tag_limits"
                )

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    @property
    def description(self) -> str:
        """The function's docstring."""
        return inspect.getdoc(self.fn) or ""

    @property
    def entrypoint(self) -> str | None:
        """Where to import the flow from: ``module:name``, or ``/path/file.py:name`` for scripts."""
        module = sys.modules.get(self.fn.__module__)
        if module is None:
            return None
        qualname = self.fn.__qualname__
        if "<locals>" in qualname:
            return None
        path = getattr(module, "__file__", None)
        if self.fn.__module__ == "__main__" or self.fn.__module__.startswith("_shipyard_flow_file_"):
            return f"{os.path.abspath(path)}:{qualname}" if path else None
        return f"{self.fn.__module__}:{qualname}"

    def info(self) -> FlowInfo:
        """What the store records about this flow."""
        now = time.time()
        triggers = tuple(t.describe() for t in self.triggers)
        return FlowInfo(
            name=self.name,
            description=self.description,
            entrypoint=self.entrypoint,
            schedule=self.schedule.cron if self.schedule else None,
            timezone=self.schedule.timezone if self.schedule else "UTC",
            triggers=triggers,
            owners=self.owners,
            max_active_runs=self.max_active_runs,
            created_at=now,
            updated_at=now,
        )

    def stores(self) -> Stores:
        """The stores this flow records into (its ``client``'s, or the configured ones)."""
        return resolve_stores(self.client)

    def with_options(self, **changes: Any) -> Flow:
        """A copy with some options changed (``executor=LocalExecutor(cpus=2)``, ``client=...``)."""
        if "schedule" in changes:
            changes["schedule"] = as_schedule(changes["schedule"])
        return dataclasses.replace(self, **changes)

    def run(self, *args: Any, **params: Any) -> FlowRun:
        """Run now and return the recorded :class:`FlowRun` (``.state``, ``.result``, ``.tasks``).

        A run that fails is returned, not raised (Prefect's ``return_state=True``): read
        its ``state`` and ``error``, and each failed task run's ``error`` (the exception's
        type, message and traceback). Calling the flow instead raises :class:`FlowRunError`.
        Parameters are checked against the type hints first: a bad one raises
        :class:`~shipyard.errors.InvalidInputError` and nothing is recorded.
        """
        checked = _params.bind_params(self.fn, self.name, args, params)
        return _run.execute(self, checked, self.stores())

    def __call__(self, *args: Any, **params: Any) -> Any:
        """Run now and return the flow's result.

        Raises :class:`FlowRunError` naming the failed tasks if the run did not succeed; its
        ``flow_run`` is the recorded run.
        """
        record = self.run(*args, **params)
        return _result_or_raise(record)

    def resume(self, run_id: str, *, executor: str | Executor | None = None) -> FlowRun:
        """Run a failed, crashed or cancelled run again, reusing every task output that succeeded."""
        return resume(run_id, flow=self, executor=executor, client=self.client)


def _result_or_raise(record: FlowRun) -> Any:
    if record.state == "succeeded":
        return record.result
    failed = tuple(t.task_key for t in record.tasks if t.state in ("failed", "crashed"))
    named = f" (failed tasks: {', '.join(failed)})" if failed else ""
    first = (record.error or record.state).splitlines()[0]
    raise FlowRunError(
        f"flow {record.flow_name!r} run {record.id} {record.state}{named}: {first}; "
        f"the run is on the error's .flow_run, and {record.flow_name}.run(...) returns it without raising",
        run=record,
        failed_tasks=failed,
    )


@overload
def flow(fn: Callable[..., Any], /) -> Flow: ...
@overload
def flow(
    *,
    name: str | None = None,
    schedule: str | Schedule | None = None,
    triggers: Sequence[Trigger] = (),
    max_active_runs: int | None = None,
    tag_limits: Mapping[str, int] | None = None,
    owners: Sequence[str] = (),
    executor: str | Executor | None = None,
    experiment: str | None = None,
) -> Callable[[Callable[..., Any]], Flow]: ...
def flow(fn: Callable[..., Any] | None = None, /, **options: Any) -> Flow | Callable[[Callable[..., Any]], Flow]:
    """Make a function a flow: calling it runs it, recorded, and returns its result.

    ``schedule`` is a cron string (UTC) or a :class:`Schedule`; ``triggers`` start runs on
    events; ``max_active_runs`` caps concurrent runs started by the scheduler;
    ``tag_limits={"db": 2}`` caps concurrent tasks tagged ``db`` within a run.
    """

    def make(function: Callable[..., Any]) -> Flow:
        opts = dict(options)
        name = opts.pop("name", None) or function.__name__
        opts["schedule"] = as_schedule(opts.get("schedule"))
        opts["triggers"] = tuple(opts.get("triggers", ()))
        opts["owners"] = tuple(opts.get("owners", ()))
        opts["tag_limits"] = dict(opts.get("tag_limits") or {})
        return Flow(function, name, **opts)

    return make(fn) if fn is not None else make


def get_flow_run(run_id: str, *, client: HasStores | None = None) -> FlowRun:
    """A flow run with its task runs and, once it succeeded, its result.

    A running run whose heartbeat lapsed is marked ``crashed`` first.
    """
    stores = resolve_stores(client)
    crash_stale_runs(stores)
    record = stores.flows.get_flow_run(run_id)
    if record.state == "succeeded" and record.result_ref is not None:
        record = dataclasses.replace(record, result=_values.load(stores, record.result_ref))
    return record


def list_flow_runs(
    flow_name: str | None = None, *, states: Sequence[str] = (), limit: int = 50, client: HasStores | None = None
) -> list[FlowRun]:
    """The latest runs, newest first (without their task runs)."""
    stores = resolve_stores(client)
    crash_stale_runs(stores)
    return stores.flows.list_flow_runs(flow_name, states=states, limit=limit)


def cancel_flow_run(run_id: str, *, client: HasStores | None = None) -> FlowRun:
    """Cancel a queued run now, or ask a running one to stop (its process cancels within seconds)."""
    stores = resolve_stores(client)
    crash_stale_runs(stores)
    return stores.flows.request_cancel(run_id, time.time())


def crash_stale_runs(stores: Stores) -> list[str]:
    """Mark ``crashed`` the running flow runs whose process stopped beating."""
    return stores.flows.crash_stale_flow_runs(time.time() - stores.settings.heartbeat_timeout)


def resume(
    run_id: str,
    *,
    flow: Flow | None = None,
    executor: str | Executor | None = None,
    client: HasStores | None = None,
    watch: Callable[[LiveRun], None] | None = None,
) -> FlowRun:
    """Finish a failed, crashed or cancelled run: tasks that succeeded (same identity and
    inputs) keep their outputs, everything else runs. The flow is imported from where the
    run recorded it unless given.

    Example:
        >>> run = pipeline.run(day="2026-11-01")   # fails in one branch  # doctest: +SKIP
        >>> resume(run.id).state                    # only that branch runs again  # doctest: +SKIP
        'succeeded'
    """
    stores = resolve_stores(client if client is not None else flow.client if flow is not None else None)
    crash_stale_runs(stores)
    record = stores.flows.get_flow_run(run_id)
    if record.state not in _run.RESUMABLE:
        raise ConflictError(
            f"flow run {run_id} is {record.state}; only failed, crashed or cancelled runs can be resumed",
            field="run_id",
        )
    if flow is None:
        if record.entrypoint is None:
            raise InvalidInputError(
                f"flow run {run_id} did not record where its flow lives; pass flow= to resume()", field="flow"
            )
        flow = load_flow(record.entrypoint)
    if flow.name != record.flow_name:
        raise InvalidInputError(
            f"flow run {run_id} belongs to flow {record.flow_name!r}, not {flow.name!r}", field="flow"
        )
    params = _stored_params(stores, flow, record)
    previous = {t.task_key: t for t in record.tasks}
    return _run.execute(
        flow,
        params,
        stores,
        existing=record,
        from_states=_run.RESUMABLE,
        previous=previous,
        executor=executor,
        watch=watch,
    )


def flows_in(module: ModuleType) -> dict[str, Flow]:
    """Every flow defined at the top level of ``module``, by attribute name."""
    return {name: value for name, value in vars(module).items() if isinstance(value, Flow)}


def load_flow(target: str) -> Flow:
    """The flow at ``FILE.py:NAME`` or ``module.path:NAME``."""
    module, attr = _loader.import_target(target)
    value = getattr(module, attr, None)
    if not isinstance(value, Flow):
        known = ", ".join(sorted(flows_in(module))) or "none"
        source = target.rpartition(":")[0]
        raise NotFoundError(f"{source} has no flow {attr!r}; its flows are: {known}", field="flow")
    return value


def run_queued(flow: Flow, record: FlowRun, *, stores: Stores, executor: str | Executor | None = None) -> FlowRun:
    """Execute a run the scheduler claimed from the queue (its record is already ``running``)."""
    params = _params.bind_params(flow.fn, flow.name, (), _params.coerce_params(flow.fn, flow.name, record.params))
    return _run.execute(
        flow, params, stores, existing=record, from_states=("running",), executor=executor, trigger=record.trigger
    )


def _stored_params(stores: Stores, flow: Flow, record: FlowRun) -> dict[str, Any]:
    if record.params_ref is not None:
        stored = _values.load(stores, record.params_ref)
        return _params.bind_params(flow.fn, flow.name, (), stored)
    coerced = _params.coerce_params(flow.fn, flow.name, record.params)
    return _params.bind_params(flow.fn, flow.name, (), coerced)


def emit_event(
    kind: str, name: str, payload: Mapping[str, Any] | None = None, *, client: HasStores | None = None
) -> int:
    """Record an event (monitoring writes ``emit_event("alert", "churn-drift", {...})``); returns its id."""
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise InvalidInputError(f"event kind and name must be non-empty strings, got {kind!r}, {name!r}", field="name")
    events = resolve_stores(client).flows.emit_events([(kind, name, dict(payload or {}))])
    return events[0].id


__all__ = [
    "Flow",
    "MapFuture",
    "Task",
    "TaskFuture",
    "cancel_flow_run",
    "emit_event",
    "flow",
    "get_flow_run",
    "list_flow_runs",
    "resume",
    "task",
]
