"""Model performance from delayed labels: accuracy, ROC AUC, F1 or RMSE, MAE, per time window, with a trend.

Windows are cut by prediction time (when the model answered), so a label that arrives
a week late still counts for the window its prediction belongs to.

Example:
    >>> from shipyard.monitoring.performance import windowed_performance
    >>> report = windowed_performance("churn", window="1h", start=t0, end=t0 + 6 * 3600)  # doctest: +SKIP
    >>> report.windows[-1].metrics["roc_auc"], report.trend["roc_auc"]  # doctest: +SKIP
    (0.71, -0.04)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError
from shipyard.monitoring._logs import arm_runs, labelled_predictions, parse_window
from shipyard.tracking.api import HasStores, resolve_stores

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CLASSIFICATION_METRICS = ("accuracy", "roc_auc", "f1")
REGRESSION_METRICS = ("rmse", "mae")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LOWER_IS_BETTER = frozenset(REGRESSION_METRICS)
TASKS = ("classification", "regression")


@dataclass(frozen=True, slots=True)
class WindowPerformance:
    """The metrics of one window ``[start, end)`` over its ``rows`` labelled predictions."""

    start: float
    end: float
    rows: int
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN as ``None``)."""
        return {"start": self.start, "end": self.end, "rows": self.rows, "metrics": _plain(self.metrics)}


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Windowed performance of a model; ``trend`` is each metric's change per window (least squares)."""

    task: str
    windows: tuple[WindowPerformance, ...]
    trend: Mapping[str, float] = field(default_factory=dict)

    @property
    def latest(self) -> WindowPerformance | None:
        """The newest window that has labelled rows."""
        filled = [w for w in self.windows if w.rows]
        return filled[-1] if filled else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"task": self.task, "windows": [w.to_dict() for w in self.windows], "trend": _plain(self.trend)}


def _plain(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else float(v)) for k, v in values.items()}


def infer_task(labels: Any) -> str:
    """``"classification"`` when every label is 0 or 1 (or a boolean), else ``"regression"``."""
    import numpy as np

    values = np.asarray(labels, dtype=np.float64)
    return "classification" if values.size and bool(np.isin(values, (0.0, 1.0)).all()) else "regression"


def roc_auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U, ties averaged); NaN with one class only."""
    import numpy as np
    import pandas as pd

    y = np.asarray(y_true, dtype=np.float64) == 1.0
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_metrics(y_true: Any, scores: Any, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, ROC AUC and F1 (class 1 positive) of scores (probabilities of class 1, or 0/1 predictions)."""
    import numpy as np

    y = np.asarray(y_true, dtype=np.float64) == 1.0
    s = np.asarray(scores, dtype=np.float64)
    if not y.size:
        return dict.fromkeys(CLASSIFICATION_METRICS, math.nan)
    accuracy, f1 = threshold_metrics(y, s, threshold=threshold)
    return {"accuracy": accuracy, "roc_auc": roc_auc(y, s), "f1": f1}


def threshold_metrics(y_true: Any, scores: Any, *, threshold: float = 0.5) -> tuple[float, float]:
    """Accuracy and F1 (class 1 positive) alone: no ranking, so cheap enough per bootstrap draw."""
    import numpy as np

    y = np.asarray(y_true, dtype=np.float64) == 1.0
    predicted = np.asarray(scores, dtype=np.float64) >= threshold
    if not y.size:
        return math.nan, math.nan
    true_pos = int((predicted & y).sum())
    denominator = int(predicted.sum()) + int(y.sum())
    return float((predicted == y).mean()), (2 * true_pos / denominator if denominator else math.nan)


def regression_metrics(y_true: Any, predictions: Any) -> dict[str, float]:
    """Root mean squared error and mean absolute error."""
    import numpy as np

    error = np.asarray(predictions, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    if not error.size:
        return dict.fromkeys(REGRESSION_METRICS, math.nan)
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


def evaluate(y_true: Any, predictions: Any, *, task: str | None = None) -> dict[str, float]:
    """The metrics of ``task`` (inferred from the labels when ``None``)."""
    chosen = check_task(task) or infer_task(y_true)
    if chosen == "classification":
        return classification_metrics(y_true, predictions)
    return regression_metrics(y_true, predictions)


def check_task(task: str | None) -> str | None:
    """``task`` itself, when it is ``None`` or one of :data:`TASKS`."""
    if task is not None and task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}", field="task")
    return task


def check_metric(metric: str) -> str:
    """``metric`` itself, when it is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise InvalidInputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}", field="metric")
    return metric


def prediction_column(frame: pd.DataFrame, outputs: Sequence[str] = ()) -> str:
    """The logged output to score: class 1's probability when there are two, else the single prediction."""
    candidates = [c for c in outputs if c in frame.columns] or [
        c for c in frame.columns if c == "prediction" or c.startswith(("prediction_", "output."))
    ]
    if not candidates:
        raise InvalidInputError(
            f"the prediction log has no output column; its columns are: {', '.join(map(str, frame.columns))}",
            field="outputs",
        )
    return candidates[1] if len(candidates) == 2 else candidates[0]


def trend(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index, skipping NaN; NaN with fewer than two."""
    import numpy as np

    y = np.asarray(values, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    keep = ~np.isnan(y)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(x[keep], y[keep], 1)[0])


def window_edges(window: str | float, *, start: float | None, end: float | None, count: int = 1) -> np.ndarray:
    """Window boundaries: ``count`` windows ending at ``end`` (now), or every window from ``start``."""
    import numpy as np

    size = parse_window(window)
    stop = time.time() if end is None else float(end)
    if start is None:
        first = stop - size * count
    else:
        first = float(start)
        if first >= stop:
            raise InvalidInputError(f"start ({first}) must be before end ({stop})", field="start")
    n = max(1, math.ceil((stop - first) / size))
    if n > 10_000:
        raise InvalidInputError(
            f"{n} windows of {window} is too many (at most 10,000); widen the window", field="window"
        )
    return np.array([first + i * size for i in range(n)] + [stop])


def windowed_performance(
    model: str,
    *,
    window: str | float = "1h",
    start: float | None = None,
    end: float | None = None,
    count: int = 24,
    arm: str | None = None,
    task: str | None = None,
    client: HasStores | None = None,
) -> PerformanceReport:
    """Metrics per window from the labelled predictions of ``model`` (one arm's when ``arm`` is given).

    Args:
        model: The served model's name.
        window: The window length (``"1h"``, ``"10m"``, seconds).
        start: The first window's start; the ``count`` windows before ``end`` when ``None``.
        end: The last window's end (now when ``None``).
        count: How many windows when ``start`` is ``None``.
        arm: ``"primary"``, ``"canary"`` or ``"shadow"``; every arm when ``None``.
        task: ``"classification"`` or ``"regression"``; from the labels when ``None``.
        client: A ``Client``; the settings in force when ``None``.
    """
    check_task(task)
    edges = window_edges(window, start=start, end=end, count=count)
    stores = resolve_stores(client)
    frame = labelled_predictions(stores, arm_runs(stores, model, arm=arm), start=edges[0], end=edges[-1])
    return performance_of(frame, edges, task=task)


def performance_of(frame: pd.DataFrame, edges: np.ndarray, *, task: str | None = None) -> PerformanceReport:
    """Windowed metrics of labelled predictions (``label``, ``_timestamp`` and an output column)."""
    import numpy as np

    chosen = check_task(task) or (infer_task(frame["label"]) if len(frame) else "classification")
    names = CLASSIFICATION_METRICS if chosen == "classification" else REGRESSION_METRICS
    windows = []
    if len(frame):
        column = prediction_column(frame)
        seconds = frame["_timestamp"].astype("int64").to_numpy() / 1e6
        index = np.searchsorted(edges, seconds, side="right") - 1
    for i in range(len(edges) - 1):
        rows = frame[index == i] if len(frame) else frame
        metrics = evaluate(rows["label"], rows[column], task=chosen) if len(rows) else dict.fromkeys(names, math.nan)
        windows.append(WindowPerformance(float(edges[i]), float(edges[i + 1]), len(rows), metrics))
    slopes = {name: trend([w.metrics[name] for w in windows]) for name in names}
    return PerformanceReport(chosen, tuple(windows), slopes)
