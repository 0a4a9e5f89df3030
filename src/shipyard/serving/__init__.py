"""Online model serving: Open Inference Protocol v2 and plain JSON, dynamic batching, hot swap, canary, shadow.

Example:
    >>> from shipyard.serving import ModelSpec, ServingConfig, create_app
    >>> config = ServingConfig(models=(ModelSpec("churn@champion", canary="churn@challenger", canary_percent=10),))
    >>> app = create_app(config)  # doctest: +SKIP
    >>> # or from the shell: shipyard serve churn@champion --canary churn@challenger=10 --workers 2
"""

from shipyard.serving.app import create_app
from shipyard.serving.models import BatchingConfig, ModelSpec, ServingConfig
from shipyard.serving.server import serve

__all__ = ["BatchingConfig", "ModelSpec", "ServingConfig", "create_app", "serve"]
