"""A model read back from the registry, predicting through its signature."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.registry._flavors import Flavor, class_path
from shipyard.registry.models import Signature
from shipyard.registry.signature import check_input, to_frame
from shipyard.store.entities import ModelVersion

FEATURE_SERVICE_TAG = "shipyard.feature_service"
FEATURE_SERVICE_VERSION_TAG = "shipyard.feature_service_version"


@dataclass(frozen=True, slots=True)
class FeatureServiceRef:
    """The feature service a model version was trained on: its name and applied definition version.

    Serving reads the features with ``FeatureStore().get_feature_service(ref.name, version=ref.version)``.
    """

    name: str
    version: int


def feature_service_of(version: ModelVersion) -> FeatureServiceRef | None:
    """The feature service recorded on a version by ``log_model(..., features=...)``, else ``None``."""
    name = version.tags.get(FEATURE_SERVICE_TAG)
    number = version.tags.get(FEATURE_SERVICE_VERSION_TAG, "")
    if not name or not number.isdecimal():
        return None
    return FeatureServiceRef(name, int(number))


class LoadedModel:
    """A registered model version, loaded: ``predict`` (and ``predict_proba`` where the model has it).

    Input is a DataFrame, a dict of lists, a list of dict records or a 2-D numpy array;
    when the version has a signature, input is checked against it first (see
    :func:`shipyard.registry.signature.check_input`).

    Attributes:
        version: The registry's record of the version.
        signature: The version's signature, ``None`` when it was logged without one.
        flavor: The flavor's name (``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, ``pyfunc``).
        raw: The underlying model object (an onnxruntime session for ONNX).
        manifest: The package's manifest: files, library versions, Python version.
        feature_service: The feature service it was trained on (logged with ``features=``), else ``None``.
    """

    __slots__ = ("_flavor", "feature_service", "flavor", "manifest", "raw", "signature", "version")

    def __init__(self, version: ModelVersion, *, flavor: Flavor, raw: Any, manifest: Mapping[str, Any]) -> None:
        self.version = version
        self.signature = None if version.signature is None else Signature.from_dict(version.signature)
        self.flavor = flavor.name
        self.raw = raw
        self.manifest = manifest
        self.feature_service = feature_service_of(version)
        self._flavor = flavor

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.ref!r}, flavor={self.flavor!r}, raw={class_path(self.raw)})"

    def predict(self, data: Any) -> Any:
        """Predictions for ``data``.

        Raises:
            SchemaMismatchError: a column is missing or mistyped; the message names each.
        """
        return self._flavor.predict(self.raw, self._prepare(data))

    @property
    def predict_proba(self) -> Callable[[Any], Any]:
        """Class probabilities for ``data``, for models that have them.

        Raises:
            AttributeError: the underlying model has no ``predict_proba`` (regressors, Boosters, ...).
        """
        proba = self._flavor.proba(self.raw)
        if proba is None:
            raise AttributeError(
                f"model {self.version.ref} ({self.flavor} flavor, {class_path(self.raw)}) has no predict_proba: "
                "it does not give class probabilities; use predict()"
            )

        def predict_proba(data: Any) -> Any:
            return proba(self._prepare(data))

        return predict_proba

    def _prepare(self, data: Any) -> Any:
        if self.signature is not None:
            return check_input(data, self.signature, model=f"model {self.version.ref}")
        if isinstance(data, Mapping) or (isinstance(data, list | tuple) and data and isinstance(data[0], Mapping)):
            return to_frame(data)
        return data
