"""Loading definitions from a Python file, for ``shipyard features plan/apply PATH``."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.features.models import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView

MODULE_PREFIX = "_shipyard_features_file_"


def load_module(path: str | Path) -> ModuleType:
    """Import a Python file once per process under a private module name derived from its path."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise NotFoundError(f"definitions file {str(path)!r} does not exist", field="path")
    name = MODULE_PREFIX + hashlib.sha256(str(file).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"{str(path)!r} is not a Python file", field="path")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_definitions(path: str | Path) -> list[Definition]:
    """Every entity, feature view, on-demand view and service defined at the top level of a file."""
    kinds = (Entity, FeatureView, OnDemandFeatureView, FeatureService)
    found = [value for value in vars(load_module(path)).values() if isinstance(value, kinds)]
    if not found:
        raise InvalidInputError(
            f"{str(path)!r} defines no Entity, FeatureView, OnDemandFeatureView or FeatureService at its top level",
            field="path",
        )
    return found
