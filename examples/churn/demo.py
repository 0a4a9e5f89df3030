"""The whole lifecycle on the embedded default: features → tracked runs → registry → card → lineage → serving.

The training frame comes from the feature store: daily customer snapshots (a Parquet source
keyed by ``user_id``) joined point in time to churn labels, then the champion is served by
user id, its features read from the online store. Run with ``make demo``. Everything lands in
``.shipyard/`` in the working directory (the source data in ``.shipyard/churn-data/``); no server.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
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
from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from shipyard.registry import model_card

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # make_data beside this file, however the demo is started
from batch_step import score_file  # noqa: E402
from make_data import write_history  # noqa: E402
from monitor_step import monitor_step  # noqa: E402
from stream_step import stream_predictions  # noqa: E402

DATA = Path(".shipyard") / "churn-data"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "usage_gb", "contract"]
CATEGORICAL = ["plan", "contract"]
console = Console()


def feature_definitions(snapshots: Path) -> tuple[list[Entity | FeatureView | FeatureService], FeatureService]:
    """The customer entity, two feature views over the daily snapshots, and the churn model's service."""
    customer = Entity("customer", join_keys=["user_id"], description="a paying customer")
    source = FileSource(snapshots, timestamp_field="ts")  # one file of daily snapshots feeds both views

    def view(name: str, owner: str, description: str, schema: list[Field]) -> FeatureView:
        return FeatureView(
            name, entities=[customer], source=source, ttl="7d", owner=owner, description=description, schema=schema
        )

    profile = view(
        "customer_profile",
        "billing",
        "contract, plan and charges of each customer",
        [
            Field("tenure_months", "int", "months since the customer signed up"),
            Field("monthly_charges", "float", "the current monthly bill"),
            Field("plan", "string", "basic, plus or pro"),
            Field("contract", "string", "monthly or yearly"),
        ],
    )
    activity = view(
        "customer_activity",
        "growth",
        "support calls and data usage so far this month",
        [Field("support_calls", "int", "support calls this month"), Field("usage_gb", "float", "data used this month")],
    )
    service = FeatureService(
        "churn_features", features=[profile, activity], owner="growth", description="what the churn model reads"
    )
    return [customer, profile, activity, service], service


def apply_features(store: FeatureStore) -> FeatureService:
    """Write the source data, apply the definitions and show what changed."""
    snapshots, _ = write_history(DATA)
    definitions, service = feature_definitions(snapshots.absolute())
    changes = store.plan(definitions)
    store.apply(definitions)
    table = Table("kind", "name", "action", "version", title="feature definitions applied")
    for c in changes:
        table.add_row(c.kind, c.name, c.action, str(c.version))
    console.print(table)
    return service


def training_frame(store: FeatureStore, service: FeatureService, labels: pd.DataFrame) -> pd.DataFrame:
    """Each label row with every feature as of the label's time (point in time: no leakage).

    Inside a run, the frame is logged as the run's input dataset ``churn-features`` and the
    features used are tagged on the run.
    """
    frame: pd.DataFrame = store.get_historical_features(
        labels, service, timestamp_field="ts", dataset_name="churn-features"
    )
    return frame


def show_point_in_time(store: FeatureStore, service: FeatureService) -> None:
    """One customer's history and the row the training frame got for its label."""
    history = pd.read_parquet(DATA / "customer_snapshots.parquet")
    labels = pd.read_parquet(DATA / "churn_labels.parquet")
    label = labels.iloc[[0]]
    row = training_frame(store, service, label)
    table = Table("ts", "support_calls", "usage_gb", title=f"customer {int(label['user_id'].iloc[0])}: daily snapshots")
    for _, snap in history[history["user_id"] == label["user_id"].iloc[0]].iterrows():
        table.add_row(str(snap["ts"]), str(snap["support_calls"]), str(snap["usage_gb"]))
    console.print(table)
    console.print(
        f"label observed at {label['ts'].iloc[0]} (churned={int(label['churned'].iloc[0])}): the training frame "
        f"reads support_calls={int(row['support_calls'].iloc[0])}, usage_gb={float(row['usage_gb'].iloc[0])} "
        "(the latest snapshot at or before it)\n",
        markup=False,
    )


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


def train_all(store: FeatureStore, service: FeatureService) -> tuple[list[str], pd.DataFrame]:
    """Train each candidate in its own tracked run on the feature store's frame; returns the run ids and test set."""
    run_ids = []
    test = pd.DataFrame()
    with Progress(console=console, transient=True) as progress:
        todo = candidates()
        bar = progress.add_task("training", total=len(todo))
        for name, (params, model) in todo.items():
            progress.update(bar, description=f"training {name}")
            with sy.start_run(experiment="churn", name=name) as run:
                data = training_frame(store, service, pd.read_parquet(DATA / "churn_labels.parquet"))
                train, test = train_test_split(data, test_size=0.3, random_state=0, stratify=data["churned"])
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
                    features=service,  # served by user id: the features come from the online store
                )
                run_ids.append(run.id)
            progress.advance(bar)
    return run_ids, test


def materialize(store: FeatureStore) -> None:
    """Copy each customer's latest feature values to the online store, with a progress bar."""
    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("materializing {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:

        def progress(view: str, done: int, total: int) -> None:
            if view not in tasks:
                tasks[view] = bar.add_task(view, total=total)
            bar.update(tasks[view], completed=done, total=total)

        records = store.materialize(end="now", progress=progress)
    for r in records:
        latest = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.max_event_time or 0))
        console.print(f"materialized {r.view}: {r.rows} customers online, latest event {latest} UTC")


def main() -> None:
    """Define features, train from the feature store, compare, promote the best, serve it by user id."""
    store = FeatureStore()
    service = apply_features(store)
    show_point_in_time(store, service)
    run_ids, test = train_all(store, service)
    materialize(store)

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
    console.print(f"churn@champion predicts {predictions} for the first three test customers", markup=False)
    ref = model.feature_service
    assert ref is not None  # logged with features=service
    console.print(f"churn@champion was trained on feature service {ref.name}@{ref.version}\n", markup=False)

    console.print(Markdown(model_card("churn@champion")))
    console.print(render_lineage(client.lineage("churn@champion")))
    console.print(render_lineage(client.lineage("feature_view:customer_activity")))
    serve_and_show_metrics(store, service, test["user_id"])
    score_file(test[["user_id", *FEATURES]], console)
    stream_predictions(test[FEATURES].head(200), console)
    monitor_step(test[[*FEATURES, "churned"]], console)
    store.close()


def serve_and_show_metrics(
    store: FeatureStore, service: FeatureService, users: pd.Series, requests: int = 200, clients: int = 16
) -> None:
    """Serve churn@champion on a loopback port, send concurrent requests carrying only a user id, show /metrics.

    Each answer is checked against the champion's in-process prediction on the online features.
    """
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
        ids = [int(u) for u in users.head(requests)]

        def send(user: int) -> tuple[int, object]:
            answer = http.post("/models/churn/predict", json={"records": [{"user_id": user}]})
            return answer.status_code, answer.json()

        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(send, ids))
        metrics_text = http.get("/metrics").text
    server.should_exit = True
    thread.join(timeout=30)

    statuses = [status for status, _ in answers]
    online = store.get_online_features({"user_id": ids}, service).to_pandas()
    expected = np.asarray(sy.load_model("churn@champion").predict(online[FEATURES])).tolist()
    served = [body["predictions"][0] if status == 200 else None for status, body in answers]  # type: ignore[index]
    console.print(f"\n[bold]served churn@champion at {base}[/]: {statuses.count(200)}/{len(statuses)} requests OK")
    console.print(
        f"requests carried only user_id; {sum(a == b for a, b in zip(served, expected, strict=True))}/{len(ids)} "
        "answers equal in-process predict on the online features"
    )
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
