"""The whole lifecycle on the embedded default: data → tracked runs → registry → card → lineage → serving.

Run with ``make demo``. Everything lands in ``.shipyard/`` in the working directory; no server.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import Progress
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shipyard as sy
from shipyard.cli.lineage import render_lineage
from shipyard.registry import model_card

HERE = Path(__file__).parent
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "usage_gb", "contract"]
CATEGORICAL = ["plan", "contract"]
console = Console()


def candidates() -> dict[str, tuple[dict[str, object], Pipeline]]:
    """The two models the demo compares, with their hyper-parameters."""
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder=StandardScaler()
    )
    logreg = {"C": 0.5, "max_iter": 500}
    hgb = {"learning_rate": 0.08, "max_iter": 150, "max_depth": 4}
    return {
        "logreg": (logreg, Pipeline([("encode", encode), ("model", LogisticRegression(**logreg))])),
        "hgb": (
            hgb,
            Pipeline(
                [
                    ("encode", ColumnTransformer([("cat", OneHotEncoder(), CATEGORICAL)], remainder="passthrough")),
                    ("model", HistGradientBoostingClassifier(random_state=0, **hgb)),
                ]
            ),
        ),
    }


def train_all(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """Train each candidate in its own tracked run; returns the run ids."""
    run_ids = []
    with Progress(console=console, transient=True) as progress:
        todo = candidates()
        bar = progress.add_task("training", total=len(todo))
        for name, (params, model) in todo.items():
            progress.update(bar, description=f"training {name}")
            with sy.start_run(experiment="churn", name=name) as run:
                sy.log_dataset(train, "churn-train")
                sy.log_dataset(test, "churn-test")
                sy.log_params({"model": name, **params})
                model.fit(train[FEATURES], train["churned"])
                scores = model.predict_proba(test[FEATURES])[:, 1]
                sy.log_metrics(
                    {
                        "auc": roc_auc_score(test["churned"], scores),
                        "f1": f1_score(test["churned"], scores > 0.5),
                        "accuracy": accuracy_score(test["churned"], scores > 0.5),
                    }
                )
                sy.log_model(
                    model,
                    "churn",
                    input_example=train[FEATURES].head(5),
                    owner="demo@shipyard.dev",
                    team="growth",
                    intended_use="Rank customers by churn risk for the retention team's weekly call list.",
                    limitations="Synthetic data; not calibrated for customers with under one month of tenure.",
                )
                run_ids.append(run.id)
            progress.advance(bar)
    return run_ids


def main() -> None:
    """Train, compare, promote the best, and show what was recorded."""
    data = pd.read_csv(HERE / "churn.csv")
    train, test = train_test_split(data, test_size=0.3, random_state=0, stratify=data["churned"])
    run_ids = train_all(train, test)

    client = sy.Client()
    runs = client.search_runs(
        "churn", filter=" or ".join(f"run_id = '{r}'" for r in run_ids), order_by=["metrics.auc desc"]
    ).items
    best = runs[0]
    version = next(v for v in client.stores.models.versions_for_runs([best.id]) if v.name == "churn")
    sy.set_alias("churn", "champion", version.version)

    table = Table("run", "model", "auc", "f1", "accuracy", "status", title="runs in experiment 'churn' (this demo)")
    for run in runs:
        table.add_row(
            run.id[:12],
            run.params["model"],
            f"{run.metrics['auc']:.4f}",
            f"{run.metrics['f1']:.4f}",
            f"{run.metrics['accuracy']:.4f}",
            run.status,
        )
    console.print(table)
    console.print(f"[bold green]churn@champion[/] → version {version.version} ({best.params['model']})\n")

    model = sy.load_model("churn@champion")
    sample = test[FEATURES].head(3)
    # Plain Python values: numpy scalars print as np.int64(0), and rich would read "[...]" as markup.
    predictions = np.asarray(model.predict(sample)).tolist()
    console.print(f"churn@champion predicts {predictions} for the first three test customers\n", markup=False)

    console.print(Markdown(model_card("churn@champion")))
    console.print(render_lineage(client.lineage("churn@champion")))
    serve_and_show_metrics(test[FEATURES])


def serve_and_show_metrics(rows: pd.DataFrame, requests: int = 200, clients: int = 16) -> None:
    """Serve churn@champion on a loopback port, send concurrent single-row requests, show /metrics."""
    import httpx
    import uvicorn
    from prometheus_client.parser import text_string_to_metric_families

    from shipyard.serving import ModelSpec, ServingConfig, create_app
    from shipyard.testing import free_port

    port = free_port()
    app = create_app(ServingConfig(models=(ModelSpec("churn@champion"),), log_flush_seconds=1.0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as http:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        records = rows.head(requests).to_dict(orient="records")

        def send(record: dict[str, object]) -> int:
            return http.post("/models/churn/predict", json={"records": [record]}).status_code

        with ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(send, records))
        metrics_text = http.get("/metrics").text
    server.should_exit = True
    thread.join(timeout=30)

    console.print(f"\n[bold]served churn@champion at {base}[/]: {statuses.count(200)}/{len(statuses)} requests OK")
    table = Table("metric", "labels", "value", title="what /metrics exposes (counters and histogram totals)")
    for family in text_string_to_metric_families(metrics_text):
        if not family.name.startswith("shipyard_"):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            labels = ", ".join(f"{k}={v}" for k, v in sample.labels.items())
            table.add_row(sample.name, labels, f"{sample.value:g}")
    console.print(table)


if __name__ == "__main__":
    main()
