"""The records flows hand back (flow runs, task runs) and the errors a failed run raises."""

from __future__ import annotations

from shipyard.errors import FlowRunError, TaskRunError
from shipyard.store.entities import (
    FINAL_FLOW_STATES,
    FLOW_RUN_STATES,
    TASK_RUN_STATES,
    FlowEvent,
    FlowInfo,
    FlowRun,
    TaskLogLine,
    TaskRun,
    ValueRef,
)

__all__ = [
    "FINAL_FLOW_STATES",
    "FLOW_RUN_STATES",
    "TASK_RUN_STATES",
    "FlowEvent",
    "FlowInfo",
    "FlowRun",
    "FlowRunError",
    "TaskLogLine",
    "TaskRun",
    "TaskRunError",
    "ValueRef",
]
