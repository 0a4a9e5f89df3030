"""The XGBoost flavor: XGBoost's own JSON model format, keeping the scikit-learn wrapper's class."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.registry._flavors import class_path, import_class, method

_FILE = "model.json"


class XGBoostFlavor:
    """``xgboost.Booster`` and the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, ...)."""

    name = "xgboost"
    libraries = ("xgboost", "scikit-learn", "numpy", "pandas")

    def matches(self, model: object) -> bool:
        """True for a Booster or an ``XGBModel``; xgboost is imported already when one exists."""
        xgb = sys.modules.get("xgboost")
        return xgb is not None and isinstance(model, xgb.XGBModel | xgb.Booster)

    def accepts(self, model: object) -> bool:
        """Only XGBoost models."""
        return self.matches(model)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Write ``model.json`` with ``save_model``; the wrapper class is recorded to rebuild it."""
        import xgboost as xgb

        model.save_model(str(folder / _FILE))
        if isinstance(model, xgb.Booster):
            return {"kind": "booster"}
        return {"kind": "sklearn", "class": class_path(model)}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """Rebuild the Booster, or the recorded wrapper class, from ``model.json``."""
        import xgboost as xgb

        path = str(folder / _FILE)
        if options.get("kind") == "booster":
            booster = xgb.Booster()
            booster.load_model(path)
            return booster
        model = import_class(str(options["class"]), xgb.XGBModel)()
        model.load_model(path)
        return model

    def predict(self, raw: Any, data: Any) -> Any:
        """Predictions; a bare Booster is fed a ``DMatrix``."""
        import xgboost as xgb

        if isinstance(raw, xgb.Booster):
            return raw.predict(xgb.DMatrix(data))
        return raw.predict(data)

    def proba(self, raw: Any) -> Callable[[Any], Any] | None:
        """``predict_proba`` of a classifier wrapper; Boosters and regressors have none."""
        return method(raw, "predict_proba")
