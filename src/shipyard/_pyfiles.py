"""Importing a user's Python file (flow files, feature definition files) once per process."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shipyard.errors import InvalidInputError, NotFoundError


def import_file(path: str | Path, *, prefix: str, what: str, field: str, sibling_imports: bool = False) -> ModuleType:
    """Import ``path`` under a private module name made of ``prefix`` and a hash of its path.

    A second call for the same file returns the module already imported. ``sibling_imports``
    puts the file's folder on ``sys.path`` first, as ``python file.py`` does.
    """
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise NotFoundError(f"{what} {str(path)!r} does not exist", field=field)
    name = prefix + hashlib.sha256(str(file).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"{str(path)!r} is not a Python file", field=field)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(file.parent)
    if sibling_imports and folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
