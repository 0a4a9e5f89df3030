"""The scikit-learn flavor: any fitted estimator or pipeline, pickled with cloudpickle."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.registry._flavors import _pickle, class_path, method

_FILE = "model.pkl"


class SklearnFlavor:
    """scikit-learn estimators (``BaseEstimator``, ``Pipeline``)."""

    name = "sklearn"
    libraries = ("scikit-learn", "cloudpickle", "numpy", "pandas")

    def matches(self, model: object) -> bool:
        """True for a scikit-learn estimator; sklearn is imported already when one exists."""
        base = sys.modules.get("sklearn.base")
        return base is not None and isinstance(model, base.BaseEstimator)

    def accepts(self, model: object) -> bool:
        """Only scikit-learn estimators."""
        return self.matches(model)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Pickle the estimator to ``model.pkl``."""
        _pickle.dump(model, folder / _FILE)
        return {"class": class_path(model)}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """Unpickle the estimator."""
        return _pickle.load(folder / _FILE)

    def predict(self, raw: Any, data: Any) -> Any:
        """``raw.predict(data)``."""
        predict = method(raw, "predict")
        if predict is None:
            raise AttributeError(f"{class_path(raw)} has no predict method; it cannot serve predictions")
        return predict(data)

    def proba(self, raw: Any) -> Callable[[Any], Any] | None:
        """``raw.predict_proba`` when the estimator (or a pipeline's last step) has one."""
        return method(raw, "predict_proba")
