"""The pyfunc flavor: any object with ``predict``, or a plain callable, pickled with cloudpickle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.registry._flavors import _pickle, class_path, method

_FILE = "model.pkl"


class PyfuncFlavor:
    """Python objects that predict: ``obj.predict(data)``, or ``fn(data)`` for a callable."""

    name = "pyfunc"
    libraries = ("cloudpickle", "numpy", "pandas")

    def matches(self, model: object) -> bool:
        """True for anything with a callable ``predict`` and for plain callables."""
        return method(model, "predict") is not None or callable(model)

    def accepts(self, model: object) -> bool:
        """The same objects detection would pick."""
        return self.matches(model)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Pickle the object (by value where cloudpickle must) to ``model.pkl``."""
        _pickle.dump(model, folder / _FILE)
        return {"class": class_path(model), "callable": method(model, "predict") is None}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """Unpickle the object."""
        return _pickle.load(folder / _FILE)

    def predict(self, raw: Any, data: Any) -> Any:
        """``raw.predict(data)``, or ``raw(data)`` for a callable."""
        predict = method(raw, "predict")
        return predict(data) if predict is not None else raw(data)

    def proba(self, raw: Any) -> Callable[[Any], Any] | None:
        """``raw.predict_proba`` when the object has one."""
        return method(raw, "predict_proba")
