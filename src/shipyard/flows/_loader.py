"""Finding objects in code: ``pipelines.py:retrain`` (a file) or ``package.module:retrain``.

The loader knows files and modules, not flows: it returns the module and the name it
found, and ``shipyard.flows.api.load_flow`` checks that the object is a flow.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shipyard.errors import InvalidInputError, NotFoundError

FILE_MODULE_PREFIX = "_shipyard_flow_file_"


def load_module(path: str | Path) -> ModuleType:
    """Import a Python file once per process under a private module name."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise NotFoundError(f"flow file {str(path)!r} does not exist", field="file")
    name = FILE_MODULE_PREFIX + hashlib.sha256(str(file).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"{str(path)!r} is not a Python file", field="file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file's own sibling imports work, as with `python file.py`
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
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
