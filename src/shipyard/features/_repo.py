"""Loading definitions from a Python file, for ``shipyard features plan/apply PATH``."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from shipyard._pyfiles import import_file
from shipyard.errors import InvalidInputError
from shipyard.features.models import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView

MODULE_PREFIX = "_shipyard_features_file_"


def load_module(path: str | Path) -> ModuleType:
    """Import a Python file once per process under a private module name derived from its path."""
    return import_file(path, prefix=MODULE_PREFIX, what="definitions file", field="path")


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
