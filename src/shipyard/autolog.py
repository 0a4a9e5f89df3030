"""``sy.autolog()``: record scikit-learn, XGBoost and LightGBM training with no logging code.

Each top-level ``fit`` (not the inner fits of a Pipeline or a search) records the estimator's
params, training metrics (scores on the training data, and per-iteration evaluation results
for boosters), the training data as a dataset version, and the fitted model as a new model
version with its inferred signature. A fit outside a run gets a run of its own.

Example:
    >>> import shipyard as sy
    >>> sy.autolog()                                         # doctest: +SKIP
    >>> RandomForestClassifier().fit(X, y)                   # a run, a dataset, a model version
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shipyard.datasets.api import log_dataset
from shipyard.registry.api import log_model
from shipyard.tracking import api as tracking

_inside_fit: contextvars.ContextVar[bool] = contextvars.ContextVar("shipyard_autolog_fit", default=False)
_ORIGINAL = "__shipyard_original_fit__"


@dataclass(frozen=True, slots=True)
class AutologConfig:
    """What autolog records; set by :func:`autolog`."""

    log_models: bool = True
    log_datasets: bool = True
    model_name: str | None = None
    experiment: str | None = None


_config: contextvars.ContextVar[AutologConfig | None] = contextvars.ContextVar("shipyard_autolog", default=None)


def _estimator_classes() -> Iterator[type]:
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, cls in all_estimators():
            yield cls
    for module, names in (
        ("xgboost", ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")),
        ("lightgbm", ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")),
    ):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for name in names:
            if hasattr(mod, name):
                yield getattr(mod, name)


def autolog(
    *,
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    model_name: str | None = None,
    experiment: str | None = None,
) -> None:
    """Record every scikit-learn, XGBoost and LightGBM ``fit`` from now on (``disable=True`` stops it).

    Args:
        disable: stop recording; the original ``fit`` methods come back.
        log_models: register the fitted model as a new version.
        log_datasets: log the training features as a dataset version linked as the run's input.
        model_name: registered model name; default is the estimator's class name in lower case.
        experiment: experiment for runs autolog starts itself.
    """
    if disable:
        _config.set(None)
        for cls in _estimator_classes():
            original = cls.__dict__.get(_ORIGINAL)
            if original is not None:
                cls.fit = original  # type: ignore[attr-defined]
                delattr(cls, _ORIGINAL)
        return
    _config.set(AutologConfig(log_models, log_datasets, model_name, experiment))
    for cls in _estimator_classes():
        fit = cls.__dict__.get("fit")
        if fit is None or _ORIGINAL in cls.__dict__:
            continue
        setattr(cls, _ORIGINAL, fit)
        cls.fit = _wrap(fit)  # type: ignore[attr-defined]


def _wrap(fit: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fit)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _config.get()
        if config is None or _inside_fit.get():
            return fit(self, *args, **kwargs)
        token = _inside_fit.set(True)
        try:
            return _recorded_fit(fit, config, self, args, kwargs)
        finally:
            _inside_fit.reset(token)

    return patched


def _recorded_fit(
    fit: Callable[..., Any], config: AutologConfig, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # fit(X), fit(X, y) and fit(X=..., y=...) all occur.
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    own_run = tracking.active_run() is None
    run = tracking.start_run(config.experiment, type(estimator).__name__) if own_run else tracking.active_run()
    assert run is not None
    try:
        params = {k: v for k, v in estimator.get_params(deep=False).items() if _loggable(v)}
        run.log_params(params)
        run.set_tags({"autolog.estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}"})
        if config.log_datasets:
            log_dataset(_as_frame(X, y), f"{(config.model_name or type(estimator).__name__).lower()}-train")
        result = fit(estimator, *args, **kwargs)
        run.log_metrics(_training_scores(estimator, X, y))
        for key, values in _iteration_metrics(estimator).items():
            for step, value in enumerate(values):
                run.log_metric(key, float(value), step=step)
        if config.log_models:
            name = config.model_name or type(estimator).__name__.lower()
            log_model(estimator, name, input_example=_head(X))
    except BaseException:
        if own_run:
            run.end("failed")
        raise
    if own_run:
        run.end("finished")
    return result


def _loggable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | tuple | list)


def _head(X: Any) -> Any:
    return X.head(5) if hasattr(X, "head") else X[:5]


def _as_frame(X: Any, y: Any) -> Any:
    import pandas as pd

    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(X).rename(columns=str)
    if y is not None:
        frame["__target__"] = list(y)
    return frame


def _training_scores(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    if y is None:
        return {}
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    try:
        predicted = estimator.predict(X)
    except Exception:  # e.g. transformers: nothing to score
        return {}
    if is_classifier(estimator):
        scores = {
            "training_accuracy": metrics.accuracy_score(y, predicted),
            "training_f1": metrics.f1_score(y, predicted, average="weighted"),
        }
        if hasattr(estimator, "predict_proba") and len(set(y)) == 2:
            scores["training_roc_auc"] = metrics.roc_auc_score(y, estimator.predict_proba(X)[:, 1])
        return {k: float(v) for k, v in scores.items()}
    if is_regressor(estimator):
        return {
            "training_mse": float(metrics.mean_squared_error(y, predicted)),
            "training_mae": float(metrics.mean_absolute_error(y, predicted)),
            "training_r2": float(metrics.r2_score(y, predicted)),
        }
    return {}


def _iteration_metrics(estimator: Any) -> dict[str, list[float]]:
    """Per-iteration evaluation results of XGBoost and LightGBM sklearn estimators."""
    results: Any = None
    if hasattr(estimator, "evals_result_"):  # LightGBM
        results = estimator.evals_result_
    elif hasattr(estimator, "evals_result"):  # XGBoost
        try:
            results = estimator.evals_result()
        except Exception:  # fitted without an eval_set
            results = None
    if not results:
        return {}
    return {f"{data}_{metric}": list(values) for data, per in results.items() for metric, values in per.items()}
