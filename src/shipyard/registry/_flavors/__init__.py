"""Flavors: how each kind of model is written to files, read back and asked for predictions.

A flavor is found by name in a table of ``module:Class`` strings and imported on first
use, so logging a scikit-learn model never imports XGBoost. Detection asks each flavor
in the table's order (the specific libraries before scikit-learn, whose estimator base
class XGBoost and LightGBM wrappers share; ``pyfunc`` last, as the catch-all).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import InvalidInputError

FLAVORS: dict[str, str] = {
    "onnx": "shipyard.registry._flavors.onnxrt:OnnxFlavor",
    "xgboost": "shipyard.registry._flavors.xgb:XGBoostFlavor",
    "lightgbm": "shipyard.registry._flavors.lgbm:LightGBMFlavor",
    "sklearn": "shipyard.registry._flavors.scikit:SklearnFlavor",
    "pyfunc": "shipyard.registry._flavors.pyfunc:PyfuncFlavor",
}


class Flavor(Protocol):
    """What the registry needs from one kind of model."""

    name: str
    libraries: tuple[str, ...]  # distributions whose versions the manifest records

    def matches(self, model: object) -> bool:
        """True when automatic detection should pick this flavor for ``model``."""
        ...

    def accepts(self, model: object) -> bool:
        """True when ``model`` can be saved with this flavor when a user asks for it by name."""
        ...

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Write the model's files into ``folder``; returns options ``load`` needs back."""
        ...

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """Read the model back from the files ``save`` wrote."""
        ...

    def predict(self, raw: Any, data: Any) -> Any:
        """Predictions of the loaded model for already-checked input."""
        ...

    def proba(self, raw: Any) -> Callable[[Any], Any] | None:
        """The loaded model's class-probability function, ``None`` when it has none."""
        ...


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises:
        InvalidInputError: no flavor has that name.
    """
    target = FLAVORS.get(name)
    if target is None:
        raise InvalidInputError(f"unknown flavor {name!r}; known flavors: {', '.join(FLAVORS)}", field="flavor")
    module_name, attr = target.split(":")
    flavor: Flavor = getattr(importlib.import_module(module_name), attr)()
    return flavor


def detect_flavor(model: object) -> Flavor:
    """The first flavor, in the table's order, that recognizes ``model``.

    Raises:
        InvalidInputError: nothing recognizes it (no ``predict``, not callable).
    """
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise InvalidInputError(
        f"cannot tell the flavor of a {type(model).__module__}.{type(model).__qualname__}: it is not a "
        "scikit-learn, XGBoost, LightGBM or ONNX model, has no predict method and is not callable; "
        "pass flavor='onnx' for ONNX bytes or a .onnx path",
        field="model",
    )


def choose_flavor(model: object, name: str | None) -> Flavor:
    """The flavor asked for by ``name`` (checked against the model), or the detected one.

    Raises:
        InvalidInputError: the flavor is unknown or cannot save this model.
    """
    if name is None:
        return detect_flavor(model)
    flavor = get_flavor(name)
    if not flavor.accepts(model):
        raise InvalidInputError(
            f"flavor {name!r} cannot save a {type(model).__module__}.{type(model).__qualname__}; "
            "leave flavor= out to detect it",
            field="flavor",
        )
    return flavor


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the given distributions; those not installed are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def class_path(obj: object) -> str:
    """``module.QualName`` of an object's class, as the manifest records it."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def import_class(path: str, base: type) -> type:
    """Import a class by ``module.QualName``, refusing anything that is not a subclass of ``base``.

    Raises:
        InvalidInputError: the class cannot be imported or is not a ``base``.
    """
    module_name, _, qualname = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInputError(f"cannot import model class {path!r}: {exc}", field="manifest") from exc
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise InvalidInputError(f"model class {path!r} is not a {base.__qualname__}", field="manifest")
    return obj


def method(raw: Any, name: str) -> Callable[[Any], Any] | None:
    """``raw.name`` when it is callable; ``None`` when absent (properties that raise count as absent)."""
    try:
        found = getattr(raw, name, None)
    except Exception:  # scikit-learn's available_if raises when the method does not apply
        return None
    return found if callable(found) else None
