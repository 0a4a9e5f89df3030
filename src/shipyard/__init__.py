"""shipyard: a whole ML platform in one ``pip install``.

``import shipyard`` is cheap: every public name is imported on first use from the module
that owns it (``_PUBLIC_API``), so the web stack, pandas and SQLAlchemy load only when needed.

Example:
    >>> import shipyard as sy
    >>> with sy.start_run(experiment="churn") as run:   # doctest: +SKIP
    ...     sy.log_metric("auc", 0.91)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard.tracking import _exit

__version__ = "0.1.0"

_PUBLIC_API: dict[str, str] = {
    # tracking
    "start_run": "shipyard.tracking.api",
    "end_run": "shipyard.tracking.api",
    "active_run": "shipyard.tracking.api",
    "log_metric": "shipyard.tracking.api",
    "log_metrics": "shipyard.tracking.api",
    "log_param": "shipyard.tracking.api",
    "log_params": "shipyard.tracking.api",
    "set_tag": "shipyard.tracking.api",
    "set_tags": "shipyard.tracking.api",
    "log_artifact": "shipyard.tracking.api",
    "log_artifacts": "shipyard.tracking.api",
    "flush": "shipyard.tracking.api",
    "autolog": "shipyard.autolog",
    # datasets
    "log_dataset": "shipyard.datasets.api",
    "load_dataset": "shipyard.datasets.api",
    # registry
    "log_model": "shipyard.registry.api",
    "load_model": "shipyard.registry.api",
    "set_alias": "shipyard.registry.api",
    "delete_alias": "shipyard.registry.api",
    # flows
    "task": "shipyard.flows",
    "flow": "shipyard.flows",
    "Resources": "shipyard.flows",
    "Schedule": "shipyard.flows",
    "on_dataset": "shipyard.flows",
    "on_model": "shipyard.flows",
    "on_alert": "shipyard.flows",
    "resume": "shipyard.flows",
    # monitoring
    "log_labels": "shipyard.monitoring.labels",
    # everything at once
    "Client": "shipyard.client",
}

__all__ = [  # noqa: RUF022 - grouped as in _PUBLIC_API
    "__version__",
    "start_run",
    "end_run",
    "active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "log_artifact",
    "log_artifacts",
    "flush",
    "autolog",
    "log_dataset",
    "load_dataset",
    "log_model",
    "load_model",
    "set_alias",
    "delete_alias",
    "task",
    "flow",
    "Resources",
    "Schedule",
    "on_dataset",
    "on_model",
    "on_alert",
    "resume",
    "log_labels",
    "Client",
]

if TYPE_CHECKING:
    from shipyard.autolog import autolog
    from shipyard.client import Client
    from shipyard.datasets.api import load_dataset, log_dataset
    from shipyard.flows import Resources, Schedule, flow, on_alert, on_dataset, on_model, resume, task
    from shipyard.monitoring.labels import log_labels
    from shipyard.registry.api import delete_alias, load_model, log_model, set_alias
    from shipyard.tracking.api import (
        active_run,
        end_run,
        flush,
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


# Runs close as `killed` with every point on SIGTERM even when they start on a worker
# thread: the handler can only be installed from the main thread (see tracking/_exit.py).
_exit.arm()


def __getattr__(name: str) -> Any:
    module = _PUBLIC_API.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
