"""The whole lifecycle on the embedded default: data → two tracked runs → registry → card → lineage.

Run with ``make demo``. Everything lands in ``.shipyard/`` in the working directory; no server.
"""

from __future__ import annotations

from pathlib import Path

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
    console.print(f"churn@champion predicts {list(model.predict(sample))} for the first three test customers\n")

    console.print(Markdown(model_card("churn@champion")))
    console.print(render_lineage(client.lineage("churn@champion")))


if __name__ == "__main__":
    main()
