"""Finding objects in code: ``pipelines.py:retrain`` (a file) or ``package.module:retrain``.

The loader knows files and modules, not flows: it returns the module and the name it
found, and ``shipyard.flows.api.load_flow`` checks that the object is a flow.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from shipyard._pyfiles import import_file
from shipyard.errors import InvalidInputError, NotFoundError

FILE_MODULE_PREFIX = "_shipyard_flow_file_"


def load_module(path: str | Path) -> ModuleType:
    """Import a Python file once per process under a private module name."""
    module = import_file(path, prefix=FILE_MODULE_PREFIX, what="flow file", field="file", sibling_imports=True)
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)  # worker processes cannot import it by name
    return module


def import_target(target: str) -> tuple[ModuleType, str]:
    """The module of ``FILE.py:NAME`` or ``module.path:NAME``, imported, and ``NAME``."""
    source, sep, attr = target.rpartition(":")
    if not sep or not source or not attr:
        raise InvalidInputError(f"flow target {target!r} must look like FILE.py:FLOW or module:FLOW", field="target")
    if source.endswith(".py") or "/" in source or "\\" in source:
        return load_module(source), attr
    try:
        return importlib.import_module(source), attr
    except ImportError as exc:
        raise NotFoundError(f"cannot import module {source!r} for flow {target!r}: {exc}", field="target") from exc
