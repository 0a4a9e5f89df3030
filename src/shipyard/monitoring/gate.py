"""The champion/challenger gate: move the alias to a new version only when it scores better on recent labels.

Both versions are scored on the same labelled rows (the recent labelled prediction logs
of the model, or a table you pass); the alias moves when the challenger beats the
champion by more than ``min_delta`` (lower is better for ``rmse`` and ``mae``). Every
decision is recorded: a run in experiment ``monitoring`` named ``gate:<model>`` with
both scores as metrics and both versions in its tags and params, and the challenger
version tagged with the decision and that run's id, so either side leads to the other.

Example:
    >>> decision = promote_if_better("churn", 4, metric="roc_auc", min_delta=0.01)  # doctest: +SKIP
    >>> decision.promoted, decision.challenger_score, decision.champion_score  # doctest: +SKIP
    (True, 0.83, 0.71)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInputError
from shipyard.monitoring._logs import arm_runs, labelled_predictions, parse_window
from shipyard.monitoring.monitor import EXPERIMENT
from shipyard.monitoring.performance import CLASSIFICATION_METRICS, LOWER_IS_BETTER, check_metric, evaluate
from shipyard.registry import get_model, get_model_version, load_model, set_alias, set_model_tags
from shipyard.tracking.api import HasStores, resolve_stores, start_run

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.monitoring.experiments import ArmComparison


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the gate decided, on how many rows, with both scores; ``run_id`` is the recorded decision."""

    model: str
    alias: str
    metric: str
    challenger: int
    champion: int | None
    challenger_score: float
    champion_score: float | None
    min_delta: float
    rows: int
    promoted: bool
    reason: str
    run_id: str | None = None


def promote_if_better(
    model_name: str,
    challenger_version: int,
    *,
    champion_alias: str = "champion",
    metric: str = "roc_auc",
    data: pd.DataFrame | None = None,
    label: str = "label",
    window: str | float = "1d",
    min_delta: float = 0.0,
    end: float | None = None,
    client: HasStores | None = None,
) -> GateDecision:
    """Score challenger and champion on recent labelled data; move ``champion_alias`` only if the challenger wins.

    Args:
        model_name: The registered model.
        challenger_version: The new version to judge.
        champion_alias: The alias to move; with no such alias yet, the challenger takes it.
        metric: ``roc_auc``, ``accuracy``, ``f1`` (higher wins) or ``rmse``, ``mae`` (lower wins).
        data: Labelled rows (the model's input columns and ``label``); when ``None``, the
            model's labelled prediction logs of the last ``window`` before ``end``.
        label: The label column of ``data``.
        window: How far back the logged labels are read when ``data`` is ``None``.
        min_delta: How much better the challenger must be.
        end: The end of that window (now when ``None``).
        client: A ``Client``; the settings in force when ``None``.

    Raises:
        NotFoundError: no such model or version.
        InvalidInputError: the metric is unknown, or there are no labelled rows to judge on.
    """
    check_metric(metric)
    if not isinstance(min_delta, int | float) or min_delta < 0:
        raise InvalidInputError(f"min_delta must be a number >= 0, got {min_delta!r}", field="min_delta")
    challenger = get_model_version(f"{model_name}/{int(challenger_version)}", client=client)
    champion_number = get_model(model_name, client=client).aliases.get(champion_alias)
    rows = _judging_rows(model_name, data, label, window, end, client)
    challenger_score = _score(f"{model_name}/{challenger.version}", rows, label, metric, client)
    champion_score = None
    if champion_number is None:
        promoted, reason = True, f"{model_name} has no {champion_alias!r} yet: the challenger takes it"
    elif champion_number == challenger.version:
        promoted, reason = False, f"version {challenger.version} already is {champion_alias!r}"
    else:
        champion_score = _score(f"{model_name}/{champion_number}", rows, label, metric, client)
        gain = champion_score - challenger_score if metric in LOWER_IS_BETTER else challenger_score - champion_score
        promoted = math.isfinite(gain) and gain > min_delta
        verdict = "better" if promoted else "not better"
        reason = (
            f"{metric} {challenger_score:.4f} (version {challenger.version}) vs {champion_score:.4f} "
            f"(version {champion_number}) on {len(rows)} rows: {verdict} by more than {min_delta:g}"
        )
    decision = GateDecision(
        model_name,
        champion_alias,
        metric,
        challenger.version,
        champion_number,
        challenger_score,
        champion_score,
        float(min_delta),
        len(rows),
        promoted,
        reason,
    )
    return _record(decision, client)


def _judging_rows(
    model: str, data: pd.DataFrame | None, label: str, window: str | float, end: float | None, client: HasStores | None
) -> pd.DataFrame:
    import time

    if data is not None:
        if label not in data.columns:
            raise InvalidInputError(
                f"data has no label column {label!r}; its columns are: {', '.join(map(str, data.columns))}",
                field="label",
            )
        rows = data.rename(columns={label: "label"}) if label != "label" else data
    else:
        stores = resolve_stores(client)
        stop = time.time() if end is None else float(end)
        runs = [r for r in arm_runs(stores, model) if r.arm != "shadow"]
        rows = labelled_predictions(stores, runs, start=stop - parse_window(window), end=stop)
    if rows.empty:
        raise InvalidInputError(
            f"no labelled rows to judge {model} on: log labels with sy.log_labels(...) or pass data=", field="data"
        )
    return rows


def _score(ref: str, rows: pd.DataFrame, label: str, metric: str, client: HasStores | None) -> float:
    import numpy as np

    model = load_model(ref, client=client)
    names = [c["name"] for c in (model.version.signature or {}).get("inputs", [])]
    missing = [n for n in names if n not in rows.columns]
    if missing:
        raise InvalidInputError(
            f"the labelled rows lack input {missing[0]!r} of {ref}; its inputs are: {', '.join(names)}", field="data"
        )
    features = (
        rows[names] if names else rows.drop(columns=[c for c in rows.columns if c.startswith("_") or c == "label"])
    )
    if metric in CLASSIFICATION_METRICS and hasattr(model, "predict_proba"):
        scores = np.asarray(model.predict_proba(features))
        predicted = scores[:, -1] if scores.ndim == 2 else scores
    else:
        predicted = np.asarray(model.predict(features)).reshape(len(features), -1)[:, -1]
    task = "classification" if metric in CLASSIFICATION_METRICS else "regression"
    return evaluate(rows["label"].to_numpy(), predicted, task=task)[metric]


def _record(decision: GateDecision, client: HasStores | None) -> GateDecision:
    model = decision.model
    challenger = f"{model}/{decision.challenger}"
    champion = f"{model}/{decision.champion}" if decision.champion is not None else ""
    outcome = "promoted" if decision.promoted else "refused"
    tags = {
        "shipyard.gate.model": model,
        "shipyard.gate.challenger": challenger,
        "shipyard.gate.champion": champion,
        "shipyard.gate.decision": outcome,
    }
    with start_run(experiment=EXPERIMENT, name=f"gate:{model}", tags=tags, client=client) as run:
        run.log_params(
            {
                "metric": decision.metric,
                "alias": decision.alias,
                "min_delta": decision.min_delta,
                "challenger": challenger,
                "champion": champion or "none",
                "rows": decision.rows,
                "reason": decision.reason,
            }
        )
        scores = {f"challenger.{decision.metric}": decision.challenger_score}
        if decision.champion_score is not None:
            scores[f"champion.{decision.metric}"] = decision.champion_score
        run.log_metrics({k: v for k, v in scores.items() if math.isfinite(v)})
        if decision.promoted:
            set_alias(model, decision.alias, decision.challenger, client=client)
    set_model_tags(
        model,
        {"shipyard.gate.decision": outcome, "shipyard.gate.run": run.id},
        version=decision.challenger,
        client=client,
    )
    return dataclasses.replace(decision, run_id=run.id)


def promote_if_recommended(
    comparison: ArmComparison, *, champion_alias: str = "champion", client: HasStores | None = None
) -> GateDecision:
    """Act on a live-traffic experiment: move the alias to the candidate arm's version when it says ``promote``.

    The decision is recorded as :func:`promote_if_better` records its own.
    """
    promoted = comparison.recommendation == "promote"
    champion = get_model(comparison.model, client=client).aliases.get(champion_alias)
    decision = GateDecision(
        comparison.model,
        champion_alias,
        comparison.metric,
        comparison.candidate.version,
        champion,
        comparison.candidate.value,
        comparison.baseline.value,
        0.0,
        comparison.candidate.rows + comparison.baseline.rows,
        promoted,
        f"live experiment: {comparison.summary()}",
    )
    return _record(decision, client)
