"""Convert a registered model to ONNX, check it answers as the original does, register it beside it.

scikit-learn models (pipelines included) go through skl2onnx, LightGBM and XGBoost
through onnxmltools. The converted model is run with onnxruntime on the version's
stored input example (or one given) and compared with the original: labels must be
equal, probabilities and regression outputs within ``tolerance``, read as
``|onnx - original| <= tolerance * max(1, |original|)`` (absolute for values up to 1,
relative above, since ONNX's trees compute in float32). Only then is it registered, as
the next version of ``NAME-onnx`` with the source's signature and tags naming the
source version. Nothing is registered when a step fails.

Example:
    >>> from shipyard.registry.convert import convert_model
    >>> mv = convert_model("churn/3", tolerance=1e-5)  # doctest: +SKIP
    >>> mv.ref, mv.tags["source_version"]  # doctest: +SKIP
    ('churn-onnx/1', '3')
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, ModelFailedError
from shipyard.registry._example import read_example
from shipyard.registry._features import version_tags
from shipyard.registry._flavors import class_path
from shipyard.registry._loaded import LoadedModel
from shipyard.registry.api import get_model_version, load_model, log_model, set_model_tags
from shipyard.registry.models import ModelRef, Signature
from shipyard.registry.signature import check_input, infer_signature
from shipyard.store.entities import ModelVersion
from shipyard.tracking.api import HasStores, resolve_stores, start_run

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CONVERTIBLE", "Conversion", "check_conversion", "convert_model", "to_onnx"]

DEFAULT_TOLERANCE = 1e-5
SUFFIX = "-onnx"
# The flavors that convert, and the converter library each one needs.
CONVERTIBLE = {"sklearn": "skl2onnx", "lightgbm": "onnxmltools", "xgboost": "onnxmltools"}
_NUMERIC = frozenset({"integer", "float", "boolean"})


@dataclass(frozen=True, slots=True)
class Conversion:
    """What comparing a converted model with its original found on the example.

    Attributes:
        rows: Rows of the example compared.
        label_mismatches: Rows whose label (classifiers) differs.
        max_difference: Largest scaled difference of probabilities or regression outputs.
        compared: What was compared (``labels``, ``probabilities``, ``predictions``).
    """

    rows: int
    label_mismatches: int
    max_difference: float
    compared: tuple[str, ...]


def convert_model(
    ref: str | ModelRef,
    *,
    to: str = "onnx",
    tolerance: float = DEFAULT_TOLERANCE,
    example: Any = None,
    name: str | None = None,
    client: HasStores | None = None,
) -> ModelVersion:
    """Convert a version to ONNX, check it on the input example, and register it as ``NAME-onnx``.

    Args:
        ref: The source version: ``"name/3"``, ``"name@alias"`` or ``"name"`` (latest).
        to: The target format; only ``"onnx"``.
        tolerance: Largest accepted difference (see the module's docstring for how it scales).
        example: Rows to compare on; the example stored with the version when ``None``.
        name: The registered model to add the ONNX version to; ``NAME-onnx`` when ``None``.
        client: A ``Client``; the settings in force when ``None``.

    Returns:
        The new version, tagged ``source_model``, ``source_version``, ``converter`` and
        ``max_difference``.

    Raises:
        NotFoundError: no such model, version or alias.
        InvalidInputError: the format, tolerance or example is invalid, or the model cannot
            convert (its flavor, an estimator the converter does not know).
        ModelFailedError: the converted model's answers differ beyond ``tolerance``.

    Example:
        >>> convert_model("churn@champion").ref  # doctest: +SKIP
        'churn-onnx/1'
    """
    if to != "onnx":
        raise InvalidInputError(f"--to must be onnx (the only format supported), got {to!r}", field="to")
    if not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
        raise InvalidInputError(f"tolerance must be a number in [0, 1), got {tolerance!r}", field="tolerance")
    stores = resolve_stores(client)
    source = get_model_version(ref, client=client)
    if source.flavor not in CONVERTIBLE:
        raise InvalidInputError(
            f"model {source.ref} has the {source.flavor} flavor; only {', '.join(CONVERTIBLE)} models convert to ONNX",
            field="model",
        )
    loaded = load_model(source.ref, client=client)
    rows = read_example(stores, loaded.manifest) if example is None else example
    if rows is None:
        raise InvalidInputError(
            f"model {source.ref} has no stored input example to check the conversion on "
            "(it was logged without input_example); pass one (--example FILE)",
            field="example",
        )
    signature = loaded.signature or infer_signature(rows)
    checked = check_input(rows, signature, model=f"model {source.ref}")
    proto = to_onnx(loaded.raw, source.flavor, signature, model_ref=source.ref)
    result = check_conversion(loaded, proto, checked, tolerance=tolerance)
    target = name or f"{source.name}{SUFFIX}"
    with start_run("default", f"convert-{source.ref}", client=client):
        version = log_model(
            proto.SerializeToString(),
            target,
            flavor="onnx",
            signature=signature,
            input_example=checked,
            metrics=dict(source.metrics),
            description=f"ONNX conversion of {source.ref}",
            intended_use=source.intended_use,
            limitations=source.limitations,
            client=client,
        )
    tags = {
        "source_model": source.name,
        "source_version": str(source.version),
        "converter": f"{CONVERTIBLE[source.flavor]} {_version(CONVERTIBLE[source.flavor])}",
        "tolerance": f"{tolerance:g}",
        "max_difference": f"{result.max_difference:.3g}",
        # The same feature service as the source, so serving the conversion by entity id works too.
        **({} if loaded.feature_service is None else version_tags(loaded.feature_service)),
    }
    set_model_tags(target, tags, version=version.version, client=client)
    return stores.models.get_model_version(target, version.version)


def to_onnx(model: Any, flavor: str, signature: Signature, *, model_ref: str = "") -> Any:
    """The ``onnx.ModelProto`` of a fitted model of a convertible flavor, inputs typed from the signature.

    Raises:
        InvalidInputError: the converter is not installed or does not know the model.
    """
    label = model_ref or class_path(model)
    try:
        convert = _CONVERTERS[flavor]
    except KeyError:
        raise InvalidInputError(f"model {label}: the {flavor} flavor does not convert to ONNX", field="model") from None
    try:
        return convert(model, signature)
    except ImportError as exc:
        raise InvalidInputError(
            f"converting {label} needs {CONVERTIBLE[flavor]}: pip install 'shipyard[onnx]' ({exc})", field="model"
        ) from exc
    except InvalidInputError:
        raise
    except Exception as exc:  # the converters raise RuntimeError, NotImplementedError, their own errors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(
            f"model {label} ({class_path(model)}) cannot convert to ONNX: {reason}", field="model"
        ) from exc


def check_conversion(original: LoadedModel, proto: Any, rows: Any, *, tolerance: float) -> Conversion:
    """Compare the ONNX model's answers with the original's on ``rows`` (already checked input).

    Classifiers: labels must be equal and probabilities within ``tolerance``. Others: the
    predictions within ``tolerance``.

    Raises:
        ModelFailedError: a label differs, or a probability or output differs beyond ``tolerance``.
    """
    import numpy as np

    from shipyard.registry._flavors import get_flavor

    onnx = get_flavor("onnx")
    session = _session(proto)
    expected = np.asarray(original.predict(rows))
    got = np.asarray(onnx.predict(session, rows))
    if hasattr(original.raw, "classes_"):
        compared: tuple[str, ...] = ("labels",)
        mismatches = int(np.sum(expected.reshape(-1) != got.reshape(-1)))
        worst = 0.0
        proba, onnx_proba = _proba(original), onnx.proba(session)
        if proba is not None and onnx_proba is not None:
            compared += ("probabilities",)
            worst = _scaled(np.asarray(proba(rows)), np.asarray(onnx_proba(rows)))
    else:
        compared, mismatches, worst = ("predictions",), 0, _scaled(expected, got)
    result = Conversion(len(expected), mismatches, worst, compared)
    if mismatches or worst > tolerance:
        raise ModelFailedError(
            f"the ONNX conversion of {original.version.ref} does not match the original on its example "
            f"({result.rows} rows, {' and '.join(compared)}): {mismatches} label(s) differ, largest difference "
            f"{worst:.3g} (tolerance {tolerance:g}); nothing registered (raise --tolerance if float32 rounding "
            "is acceptable)"
        )
    return result


def _scaled(expected: np.ndarray[Any, Any], got: np.ndarray[Any, Any]) -> float:
    import numpy as np

    want = expected.astype(float).reshape(len(expected), -1)
    have = got.astype(float).reshape(len(got), -1)
    if want.shape != have.shape:
        raise ModelFailedError(f"the ONNX model answers with shape {have.shape}, the original with {want.shape}")
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(have - want) / np.maximum(1.0, np.abs(want))))


def _proba(model: LoadedModel) -> Callable[[Any], Any] | None:
    try:
        return model.predict_proba
    except AttributeError:
        return None


def _session(proto: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # onnxmltools declares LightGBM's label output as shape [1]; onnxruntime warns on every run
    # with more rows, a line on the user's terminal that says nothing about the conversion.
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def _numeric_width(signature: Signature, label: str) -> int:
    kinds = {column.name: column.type for column in signature.inputs}
    other = [f"{name} ({kind})" for name, kind in kinds.items() if kind not in _NUMERIC]
    if other:
        raise InvalidInputError(
            f"{label} takes non-numeric column(s) {', '.join(other)}; only numeric inputs convert for this flavor",
            field="model",
        )
    return len(kinds)


def _sklearn(model: Any, signature: Signature) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common import data_types as t

    kinds = [column.type for column in signature.inputs]
    if all(kind in _NUMERIC for kind in kinds) and not _selects_columns(model):
        inputs = [("input", t.FloatTensorType([None, len(kinds)]))]
    else:
        # Named columns, one input each, so a ColumnTransformer can pick them by name.
        tensor = {
            "integer": t.Int64TensorType,
            "float": t.FloatTensorType,
            "boolean": t.BooleanTensorType,
            "string": t.StringTensorType,
        }
        unknown = [c.name for c in signature.inputs if c.type not in tensor]
        if unknown:
            raise InvalidInputError(f"column(s) {', '.join(unknown)} have no ONNX tensor type", field="model")
        inputs = [(c.name, tensor[c.type]([None, 1])) for c in signature.inputs]
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    return convert_sklearn(model, initial_types=inputs, options=options)


def _selects_columns(model: Any) -> bool:
    from sklearn.compose import ColumnTransformer

    if isinstance(model, ColumnTransformer):
        return True
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    return any(isinstance(value, ColumnTransformer) for value in params.values())


def _lightgbm(model: Any, signature: Signature) -> Any:
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    width = _numeric_width(signature, f"the LightGBM model {class_path(model)}")
    inputs = [("input", FloatTensorType([None, width]))]
    return convert_lightgbm(model, initial_types=inputs, zipmap=False)


def _xgboost(model: Any, signature: Signature) -> Any:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    width = _numeric_width(signature, f"the XGBoost model {class_path(model)}")
    # onnxmltools reads split features as f0, f1, ...: forget the names (on a copy) so it can.
    nameless = copy.deepcopy(model)
    booster = nameless.get_booster() if hasattr(nameless, "get_booster") else nameless
    booster.feature_names = None
    return convert_xgboost(nameless, initial_types=[("input", FloatTensorType([None, width]))])


_CONVERTERS: dict[str, Callable[[Any, Signature], Any]] = {
    "sklearn": _sklearn,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
}
