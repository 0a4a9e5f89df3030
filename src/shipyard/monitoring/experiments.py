"""Experiments on live traffic: per-arm performance from delayed labels, a significance test, a recommendation.

Serving's canary arm answers a share of requests and its shadow arm answers copies of
every request (see :mod:`shipyard.serving.routing`); each arm logs its predictions, and
labels join them by request id. :func:`compare_arms` scores both arms on their labelled
rows and bootstraps the difference (candidate minus baseline): a shadow shares its
requests with the arm it copies, so pairs are resampled together (a paired test); a
canary's requests are its own, so each arm is resampled on its own. The recommendation
is ``promote`` when the whole confidence interval is an improvement, ``keep`` when it is
all a loss, else ``inconclusive``; :func:`~shipyard.monitoring.gate.promote_if_recommended`
acts on it.

Example:
    >>> result = compare_arms("churn", metric="accuracy", candidate="canary", window="1d")  # doctest: +SKIP
    >>> result.difference, (result.ci_low, result.ci_high), result.recommendation  # doctest: +SKIP
    (0.042, (0.018, 0.066), 'promote')
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError
from shipyard.monitoring._logs import arm_runs, labelled_predictions, parse_window
from shipyard.monitoring.performance import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    check_metric,
    evaluate,
    prediction_column,
    roc_auc,
    threshold_metrics,
)
from shipyard.tracking.api import HasStores, resolve_stores

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RECOMMENDATIONS = ("promote", "keep", "inconclusive")


@dataclass(frozen=True, slots=True)
class ArmResult:
    """One arm's score on its labelled rows (``version``: the version that answered most of them)."""

    arm: str
    version: int
    rows: int
    value: float


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """Candidate against baseline: the difference (candidate minus baseline), its interval and what to do."""

    model: str
    metric: str
    baseline: ArmResult
    candidate: ArmResult
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    paired: bool
    recommendation: str
    reason: str

    def summary(self) -> str:
        """One line: both scores, the difference with its interval, the recommendation."""
        return (
            f"{self.metric}: {self.candidate.arm} (version {self.candidate.version}) {self.candidate.value:.4f} "
            f"on {self.candidate.rows} rows vs {self.baseline.arm} (version {self.baseline.version}) "
            f"{self.baseline.value:.4f} on {self.baseline.rows}; difference {self.difference:+.4f}, "
            f"{self.confidence:.0%} CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
            f"{' (paired)' if self.paired else ''}: {self.recommendation} ({self.reason})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def compare_arms(
    model: str,
    *,
    metric: str = "accuracy",
    baseline: str = "primary",
    candidate: str = "canary",
    window: str | float = "1d",
    end: float | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
    min_rows: int = 30,
    seed: int = 0,
    client: HasStores | None = None,
) -> ArmComparison:
    """Compare two arms of ``model`` on their labelled predictions of the last ``window``.

    Args:
        model: The served model's name.
        metric: ``accuracy``, ``roc_auc``, ``f1`` (higher is better) or ``rmse``, ``mae`` (lower is better).
        baseline: The arm to beat (``primary``).
        candidate: ``canary`` or ``shadow``.
        window: How far back to read (``"1d"``, ``"6h"``, seconds).
        end: The window's end (now when ``None``).
        confidence: The bootstrap interval's level.
        resamples: Bootstrap resamples (at most 100,000).
        min_rows: Fewer labelled rows in an arm than this gives ``inconclusive``.
        seed: The bootstrap's random seed (the same data and seed give the same interval).
        client: A ``Client``; the settings in force when ``None``.

    Raises:
        InvalidInputError: an argument is out of range, or an arm has no labelled predictions.
    """
    import numpy as np

    check_metric(metric)
    if not 0.5 <= confidence < 1:
        raise InvalidInputError(f"confidence must be in [0.5, 1), got {confidence!r}", field="confidence")
    if not isinstance(resamples, int) or not 100 <= resamples <= 100_000:
        raise InvalidInputError(f"resamples must be between 100 and 100,000, got {resamples!r}", field="resamples")
    if baseline == candidate:
        raise InvalidInputError(f"baseline and candidate are both {baseline!r}; compare two arms", field="candidate")
    stores = resolve_stores(client)
    stop = time.time() if end is None else float(end)
    start = stop - parse_window(window)
    frames = {}
    for arm in (baseline, candidate):
        frame = labelled_predictions(stores, arm_runs(stores, model, arm=arm), start=start, end=stop)
        if frame.empty:
            raise InvalidInputError(
                f"arm {arm!r} of model {model!r} has no labelled predictions in the window; "
                "serve it (--canary / --shadow) and log labels with sy.log_labels(...)",
                field="candidate" if arm == candidate else "baseline",
            )
        frames[arm] = frame
    task = "classification" if metric in CLASSIFICATION_METRICS else "regression"
    paired = candidate == "shadow" or baseline == "shadow"
    rng = np.random.default_rng(seed)
    if paired:
        base, cand = _pairs(frames[baseline], frames[candidate])
        draws = [_paired_draw(rng, base, cand, metric, task) for _ in range(resamples)]
    else:
        base, cand = _arrays(frames[baseline]), _arrays(frames[candidate])
        draws = [
            _metric(*_resample(rng, cand), metric, task) - _metric(*_resample(rng, base), metric, task)
            for _ in range(resamples)
        ]
    diffs = np.asarray(draws, dtype=np.float64)
    diffs = diffs[np.isfinite(diffs)]
    value_base, value_cand = _metric(*base, metric, task), _metric(*cand, metric, task)
    difference = value_cand - value_base
    tail = (1 - confidence) / 2
    low, high = (float(np.quantile(diffs, q)) for q in (tail, 1 - tail)) if diffs.size else (math.nan, math.nan)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    gains = sign * diffs
    p_value = float(min(1.0, 2 * min((gains <= 0).mean(), (gains >= 0).mean()))) if gains.size else math.nan
    results = [
        ArmResult(a, _version(frames[a]), len(frames[a]), v)
        for a, v in ((baseline, value_base), (candidate, value_cand))
    ]
    recommendation, reason = _recommend(results, sign * low, sign * high, min_rows, metric)
    return ArmComparison(
        model,
        metric,
        results[0],
        results[1],
        difference,
        low,
        high,
        confidence,
        p_value,
        paired,
        recommendation,
        reason,
    )


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    column = prediction_column(frame)
    return frame["label"].to_numpy(dtype=float), frame[column].to_numpy(dtype=float)


def _pairs(
    base: pd.DataFrame, cand: pd.DataFrame
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    keys = ["_request_id", "_row"]
    left = base.assign(_score=base[prediction_column(base)])[[*keys, "label", "_score"]]
    right = cand.assign(_score=cand[prediction_column(cand)])[[*keys, "_score"]]
    joined = left.merge(right, on=keys, suffixes=("_base", "_cand"))
    if joined.empty:
        raise InvalidInputError(
            "the shadow and its arm share no labelled request; a paired test needs them", field="candidate"
        )
    y = joined["label"].to_numpy(dtype=float)
    return (y, joined["_score_base"].to_numpy(dtype=float)), (y, joined["_score_cand"].to_numpy(dtype=float))


def _metric(y: np.ndarray, scores: np.ndarray, metric: str, task: str) -> float:
    # Only the metric asked for: ROC AUC's ranking would dominate every accuracy/F1 bootstrap draw.
    if metric == "roc_auc":
        return roc_auc(y, scores)
    if metric in ("accuracy", "f1"):
        return threshold_metrics(y, scores)[metric == "f1"]
    return evaluate(y, scores, task=task)[metric]


def _resample(rng: np.random.Generator, side: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    index = rng.integers(0, len(side[0]), len(side[0]))
    return side[0][index], side[1][index]


def _paired_draw(
    rng: np.random.Generator,
    base: tuple[np.ndarray, np.ndarray],
    cand: tuple[np.ndarray, np.ndarray],
    metric: str,
    task: str,
) -> float:
    index = rng.integers(0, len(base[0]), len(base[0]))
    y = base[0][index]
    return _metric(y, cand[1][index], metric, task) - _metric(y, base[1][index], metric, task)


def _version(frame: pd.DataFrame) -> int:
    return int(frame["_version"].mode().iloc[0]) if "_version" in frame and len(frame) else 0


def _recommend(
    results: list[ArmResult], gain_low: float, gain_high: float, min_rows: int, metric: str
) -> tuple[str, str]:
    small = [r for r in results if r.rows < min_rows]
    if small:
        return "inconclusive", f"arm {small[0].arm!r} has {small[0].rows} labelled rows, fewer than {min_rows}"
    lo, hi = min(gain_low, gain_high), max(gain_low, gain_high)
    if math.isnan(lo):
        return "inconclusive", f"{metric} cannot be computed on these labels"
    if lo > 0:
        return "promote", "the whole interval is an improvement"
    if hi < 0:
        return "keep", "the whole interval is a loss"
    return "inconclusive", "the interval includes no difference"
