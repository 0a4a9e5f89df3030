"""cloudpickle files, shared by the flavors that pickle (scikit-learn, LightGBM wrappers, pyfunc)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def dump(obj: Any, path: Path) -> None:
    """Pickle ``obj`` to ``path`` with cloudpickle, so lambdas and local classes survive."""
    import cloudpickle

    with path.open("wb") as handle:
        cloudpickle.dump(obj, handle)


def load(path: Path) -> Any:
    """Unpickle ``path``; only ever called on files whose sha256 matched the registry's record."""
    import cloudpickle

    with path.open("rb") as handle:
        return cloudpickle.load(handle)
