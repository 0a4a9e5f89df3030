"""The LightGBM flavor: the booster's text model plus, for wrappers, the pickled wrapper without it."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.registry._flavors import _pickle, class_path, method

_MODEL = "model.txt"
_WRAPPER = "wrapper.pkl"


class LightGBMFlavor:
    """``lightgbm.Booster`` and the scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, ...)."""

    name = "lightgbm"
    libraries = ("lightgbm", "scikit-learn", "cloudpickle", "numpy", "pandas")

    def matches(self, model: object) -> bool:
        """True for a Booster or an ``LGBMModel``; lightgbm is imported already when one exists."""
        lgb = sys.modules.get("lightgbm")
        return lgb is not None and isinstance(model, lgb.LGBMModel | lgb.Booster)

    def accepts(self, model: object) -> bool:
        """Only LightGBM models."""
        return self.matches(model)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Write the booster as ``model.txt``; a wrapper is pickled without its booster beside it."""
        import lightgbm as lgb

        if isinstance(model, lgb.Booster):
            model.save_model(str(folder / _MODEL))
            return {"kind": "booster"}
        model.booster_.save_model(str(folder / _MODEL))
        # The wrapper keeps classes_, the objective and the parameters; the trees live in
        # model.txt alone, readable by any LightGBM, so they are not pickled twice.
        wrapper = copy.copy(model)
        wrapper._Booster = None
        _pickle.dump(wrapper, folder / _WRAPPER)
        return {"kind": "sklearn", "class": class_path(model)}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """Read ``model.txt`` and, for a wrapper, put it back into the unpickled wrapper."""
        import lightgbm as lgb

        booster = lgb.Booster(model_file=str(folder / _MODEL))
        if options.get("kind") == "booster":
            return booster
        wrapper = _pickle.load(folder / _WRAPPER)
        wrapper._Booster = booster
        return wrapper

    def predict(self, raw: Any, data: Any) -> Any:
        """``raw.predict(data)``."""
        return raw.predict(data)

    def proba(self, raw: Any) -> Callable[[Any], Any] | None:
        """``predict_proba`` of a classifier wrapper; Boosters and regressors have none."""
        return method(raw, "predict_proba")
