"""Experiment tracking: runs, params, metrics, tags, artifacts and automatic lineage.

The names load on first use, so ``import shipyard`` can arm the SIGTERM handler
(``_exit.arm``) without loading the tracking API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'shipyard.tracking' has no attribute {name!r}")
    value = getattr(importlib.import_module("shipyard.tracking.api"), name)
    globals()[name] = value
    return value
