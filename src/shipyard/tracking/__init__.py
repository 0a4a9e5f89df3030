"""Experiment tracking: runs, params, metrics, tags, artifacts and automatic lineage."""

from shipyard.tracking.api import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_run,
    log_artifact,
    log_artifacts,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
    start_run,
)

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
]
