"""Online model serving: Open Inference Protocol v2 and plain JSON, dynamic batching, hot swap, canary, shadow.

Example:
    >>> from shipyard.serving import ModelSpec, ServingConfig, create_app
    >>> config = ServingConfig(models=(ModelSpec("churn@champion", canary="churn@challenger", canary_percent=10),))
    >>> app = create_app(config)  # doctest: +SKIP
    >>> # or from the shell: shipyard serve churn@champion --canary churn@challenger=10 --workers 2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard.serving.models import BatchingConfig, ModelSpec, ServingConfig

if TYPE_CHECKING:
    from shipyard.serving.app import create_app
    from shipyard.serving.server import serve

__all__ = ["BatchingConfig", "ModelSpec", "ServingConfig", "create_app", "serve"]

# The ASGI app pulls in FastAPI and Starlette (about half a second): batch and streaming
# prediction import this package without them, so the app loads on first use.
_LAZY = {"create_app": "shipyard.serving.app", "serve": "shipyard.serving.server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shipyard.serving' has no attribute {name!r}")
