"""The demo's monitoring step: drifted traffic, delayed labels, the monitor, an alert, retraining, the gate.

An upstream change shifts one feature of every request (sign-up dates re-based: tenure
reads two years longer). The requests are answered by ``churn@champion`` and written
through serving's own prediction log; their true outcomes arrive later as labels. The
monitor compares the hour of logs with the champion's training data, the drift alert
fires, and a flow waiting for it (``on_alert``) retrains on the labelled production rows
and asks the champion/challenger gate whether the new version may take the alias.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import shipyard as sy
from shipyard.flows.scheduler import Scheduler
from shipyard.monitoring.gate import promote_if_better
from shipyard.monitoring.labels import read_labelled
from shipyard.monitoring.monitor import monitor, report_html
from shipyard.serving.batcher import AnsweredBatch
from shipyard.serving.prediction_log import PredictionLog, open_deployment_run
from shipyard.serving.validation import Columns

MODEL = "churn"
ALERT = "churn-drift"


@sy.task
def retrain_on_production(alert: dict[str, Any]) -> dict[str, Any]:
    """Fit a new version on the labelled production rows (60 %), keep the rest for the gate."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    inputs = sy.Client().stores.models.get_model_version(MODEL, alert["version"]).signature or {}
    features = [c["name"] for c in inputs.get("inputs", [])]
    rows = read_labelled(MODEL, window="1h")
    holdout = rows["_request_id"].map(lambda rid: int(uuid.UUID(rid).hex[:8], 16) % 10 < 4)
    train, test = rows[~holdout], rows[holdout]
    categorical = [c for c in features if not pd.api.types.is_numeric_dtype(train[c])]
    encode = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical)], remainder="passthrough")
    model = Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(random_state=0))])
    model.fit(train[features], train["label"])
    with sy.start_run(experiment=MODEL, name="retrain-on-alert"):
        sy.log_params({"trigger": alert["alert"], "rows": len(train)})
        mv = sy.log_model(model, MODEL, input_example=train[features].head(5), training_data=train[features])
    return {"version": mv.version, "holdout": test[[*features, "label"]]}


@sy.task
def gate(challenger: dict[str, Any]) -> dict[str, Any]:
    """Promote the challenger only if it beats the champion on the held-out production rows."""
    decision = promote_if_better(MODEL, challenger["version"], metric="roc_auc", data=challenger["holdout"])
    return {"promoted": decision.promoted, "reason": decision.reason, "version": decision.challenger}


@sy.flow(triggers=[sy.on_alert(ALERT, param="alert")])
def retrain_on_drift(alert: dict[str, Any] | None = None) -> dict[str, Any]:
    """Started by the drift alert: retrain on production labels, then let the gate decide."""
    assert alert is not None, "started by an alert"
    return dict(gate(retrain_on_production(alert)).result())


def _send(frame: pd.DataFrame, outputs: np.ndarray, version: int) -> list[str]:
    """Write the requests and answers through serving's prediction log (one batch, one Parquet partition)."""
    stores = sy.Client().stores
    run_id = open_deployment_run(stores, ref=f"{MODEL}@champion", model=MODEL, arm="primary", version=version)
    log = PredictionLog(stores, run_id=run_id, model=MODEL, arm="primary", flush_seconds=3600)
    log.start()
    ids = [str(uuid.uuid4()) for _ in range(len(frame))]
    columns = Columns({c: frame[c].to_numpy() for c in frame.columns}, len(frame))
    rows = len(frame)
    log.record(AnsweredBatch(ids, [1] * rows, [0.001] * rows, [0.004] * rows, columns, outputs), version)
    log.close()
    stores.runs.end_run(run_id, "finished", time.time())
    return ids


def monitor_step(test: pd.DataFrame, console: Console, *, shift: float = 24.0, requests: int = 1500) -> None:
    """Drift → alert → retraining flow → gate, on ``test`` (the features and the true ``churned``)."""
    champion = sy.load_model(f"{MODEL}@champion")
    features = [c.name for c in champion.signature.inputs] if champion.signature else []
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(test[c])]
    moved = "tenure_months" if "tenure_months" in numeric else numeric[0]
    traffic = test.sample(requests, replace=True, random_state=0).reset_index(drop=True)
    traffic[moved] = traffic[moved] + shift
    scores = np.asarray(champion.predict_proba(traffic[features]))[:, 1]
    ids = _send(traffic[features], scores, champion.version.version)
    console.print(
        f"\n[bold]monitoring[/]: {requests} requests with {moved} shifted by +{shift:g} answered by "
        f"churn@champion (version {champion.version.version}) and logged by serving's prediction log"
    )
    logged = sy.log_labels(ids, traffic["churned"].to_numpy(), model=MODEL)
    console.print(f"{logged.logged} delayed labels joined to their predictions by request id")

    scheduler = Scheduler([retrain_on_drift], max_concurrent_runs=1)
    scheduler.tick()  # the alert trigger's cursor starts now
    rules = [f"{ALERT}: psi({moved}) > 0.2", "roc_auc < 0.7"]
    report = monitor(f"{MODEL}@champion", window="1h", rules=rules)
    console.print(report.summary(), markup=False, soft_wrap=True)
    assert report.drift is not None
    table = Table("feature", "method", "score", "psi", "drifted", title="drift against the champion's training data")
    for name, column in report.drift.columns.items():
        psi = column.statistics.get("psi", float("nan"))
        table.add_row(name, column.method, f"{column.score:.3g}", f"{psi:.3f}", "yes" if column.drifted else "")
    console.print(table)
    for change in report.transitions:
        console.print(f"alert {change.rule.name} {change.state}: {change.rule.subject} = {change.value:.3f}")

    started = scheduler.tick()
    scheduler.run_pending(wait=True)
    scheduler.close()
    for queued in started:
        run = sy.Client().get_flow_run(queued.id)
        result = run.result if isinstance(run.result, dict) else {}
        console.print(f"flow {run.flow_name} ({queued.trigger}) {run.state}: challenger churn/{result.get('version')}")
        verdict = "[bold green]promoted[/]" if result.get("promoted") else "[bold yellow]kept the champion[/]"
        console.print(f"gate: {verdict}: {result.get('reason')}")
    aliases = sy.Client().stores.models.get_registered_model(MODEL).aliases
    console.print(f"churn@champion → version {aliases.get('champion')}")
    out = Path(".shipyard") / "monitoring-churn.html"
    out.write_text(report_html(f"{MODEL}@champion"))
    console.print(f"monitoring report: {out} ({out.stat().st_size / 1024:.0f} KiB)")
