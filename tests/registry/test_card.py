"""The model card is written from metadata: registry, training run, datasets and manifest."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.store.entities import RunDataset
from shipyard.tracking.api import start_run

Data = tuple[pd.DataFrame, np.ndarray[Any, Any]]


def _section(card: str, title: str) -> str:
    return card.split(f"## {title}\n\n", 1)[1].split("\n## ", 1)[0]


def test_card_has_every_section_with_its_values(settings: Settings, stores: Any, churn: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = churn
    with start_run("churn", "lr") as run:
        run.log_params({"C": 0.5, "solver": "lbfgs"})
        run.log_metric("auc", 0.913)
        train = stores.datasets.create_dataset_version(
            "churn-train",
            digest="d" * 64,
            format="parquet",
            schema={"tenure": "integer"},
            stats={},
            num_rows=1234,
            artifact_digest="a" * 64,
            source=None,
            created_by_run=None,
        )
        stores.datasets.link_datasets([RunDataset(run.id, "churn-train", train.version, "input")])
        model = LogisticRegression(C=0.5, max_iter=2000).fit(x, y)
        reg.log_model(
            model,
            "churn",
            input_example=x.head(3),
            description="Predicts who cancels | next month.",
            intended_use="Weekly retention campaign.",
            limitations="Not for pricing.",
            owner="ana",
            team="growth",
        )
    reg.set_alias("churn", "champion", 1)
    card = reg.model_card("churn@champion")

    assert card.startswith("# churn — version 1\n")
    assert "- **Aliases:** `champion`" in card
    assert "- **Owner:** ana" in card
    assert "- **Team:** growth" in card
    assert _section(card, "Description").strip() == "Predicts who cancels | next month."
    assert _section(card, "Intended use").strip() == "Weekly retention campaign."
    assert _section(card, "Limitations").strip() == "Not for pricing."
    assert "| auc | 0.913 |" in _section(card, "Metrics")
    params = _section(card, "Training parameters")
    assert "| C | 0.5 |" in params
    assert "| solver | lbfgs |" in params
    assert "| `churn-train@1` | input | 1,234 | `dddddddddddd` |" in _section(card, "Data")
    lineage = _section(card, "Lineage")
    run_record = stores.runs.get_run(run.id)
    assert f"| run | `{run.id}` (lr) |" in lineage
    assert "| experiment | churn |" in lineage
    assert f"| user | {run_record.lineage['user']} |" in lineage
    assert f"| host | {run_record.lineage['host']} |" in lineage
    assert f"| python | {run_record.lineage['python']} |" in lineage
    assert "| entry point |" in lineage
    git = run_record.lineage.get("git")
    if git:  # the tests run from a checkout, but a packaged copy has no git
        assert git["commit"] in lineage
    environment = _section(card, "Environment")
    assert "| flavor | sklearn |" in environment
    import sklearn

    assert f"| scikit-learn | {sklearn.__version__} |" in environment
    assert "`model.pkl`" in environment
    signature = _section(card, "Signature")
    assert "| `tenure` | integer |" in signature
    assert "| `charges` | float |" in signature
    assert "| `prediction` | integer |" in signature


def test_card_of_a_bare_version_says_what_is_missing(settings: Settings) -> None:
    reg.log_model(lambda x: x, "ident")
    card = reg.model_card("ident")
    assert "- **Owner:** _not recorded_" in card
    assert _section(card, "Intended use").strip() == "_not recorded_"
    assert _section(card, "Data").strip() == "_not recorded_"
    assert "No signature was recorded" in card
    assert "| run |" in _section(card, "Lineage")
