"""Flow tests share the store fixtures; helpers to read what a run recorded."""

from __future__ import annotations

from shipyard.flows.models import FlowRun, TaskRun


def by_key(run: FlowRun) -> dict[str, TaskRun]:
    """The run's task runs by task key."""
    return {t.task_key: t for t in run.tasks}
