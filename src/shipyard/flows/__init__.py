"""Workflows: ``@task`` and ``@flow``, a DAG from data flow, retries, caching, resume,
resource-aware local and Ray executors, schedules, triggers and DAG cards.

Example:
    >>> from shipyard.flows import flow, task
    >>> @task
    ... def square(x: int) -> int:
    ...     return x * x
    >>> @flow
    ... def squares(n: int = 3) -> list[int]:
    ...     return square.map(list(range(n))).result()
"""

from shipyard.flows._capture import get_logger
from shipyard.flows._graph import MapFuture, TaskFuture, unmapped
from shipyard.flows._resources import Resources
from shipyard.flows.api import (
    Flow,
    Task,
    cancel_flow_run,
    emit_event,
    flow,
    get_flow_run,
    list_flow_runs,
    resume,
    task,
)
from shipyard.flows.executors import Executor, LocalExecutor
from shipyard.flows.models import FlowRun, FlowRunError, TaskRun, TaskRunError
from shipyard.flows.triggers import Schedule, on_alert, on_dataset, on_event, on_model, sensor


def __getattr__(name: str) -> object:
    # RayExecutor is imported on first use, so that importing shipyard.flows never imports Ray.
    if name == "RayExecutor":
        from shipyard.flows._ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Executor",
    "Flow",
    "FlowRun",
    "FlowRunError",
    "LocalExecutor",
    "MapFuture",
    "RayExecutor",
    "Resources",
    "Schedule",
    "Task",
    "TaskFuture",
    "TaskRun",
    "TaskRunError",
    "cancel_flow_run",
    "emit_event",
    "flow",
    "get_flow_run",
    "get_logger",
    "list_flow_runs",
    "on_alert",
    "on_dataset",
    "on_event",
    "on_model",
    "resume",
    "sensor",
    "task",
    "unmapped",
]
