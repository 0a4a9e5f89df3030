"""The model registry: log models with a flavor and a signature, version them, alias them, load them.

Example:
    >>> import shipyard.registry as reg
    >>> mv = reg.log_model(model, "churn", input_example=X[:5])  # doctest: +SKIP
    >>> reg.set_alias("churn", "champion", mv.version)  # doctest: +SKIP
    >>> reg.load_model("churn@champion").predict(X)  # doctest: +SKIP
"""

from shipyard.registry._loaded import LoadedModel
from shipyard.registry.api import (
    delete_alias,
    get_model,
    get_model_version,
    list_model_versions,
    list_models,
    load_model,
    log_model,
    parse_model_ref,
    set_alias,
    set_model_tags,
    update_model,
    update_model_version,
)
from shipyard.registry.card import model_card
from shipyard.registry.models import ColumnSpec, ModelRef, Signature
from shipyard.registry.signature import infer_signature

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "ModelRef",
    "Signature",
    "delete_alias",
    "get_model",
    "get_model_version",
    "infer_signature",
    "list_model_versions",
    "list_models",
    "load_model",
    "log_model",
    "model_card",
    "parse_model_ref",
    "set_alias",
    "set_model_tags",
    "update_model",
    "update_model_version",
]
