"""The demo's synthetic churn data as a feature store sees it; deterministic for a seed.

Two Parquet files:

- ``customer_snapshots.parquet``: one row per customer per day (``user_id``, ``ts``, the
  customer's profile and activity as of that day). Support calls and usage accumulate, so a
  feature's value depends on when it is read.
- ``churn_labels.parquet``: one row per customer (``user_id``, ``ts``, ``churned``): whether
  the customer churned, observed some hours after one of the snapshots and decided by the
  values of that snapshot. A training frame must read each feature as of the label's time.

The last snapshot is the newest (the hour before now) and has no labels yet: it is what the
online store serves.

Run ``python examples/churn/make_data.py FOLDER`` to write them.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SNAPSHOTS = "customer_snapshots.parquet"
LABELS = "churn_labels.parquet"


def make_customers(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Each customer's profile and final monthly totals (what the last snapshot shows)."""
    return pd.DataFrame(
        {
            "user_id": np.arange(1, rows + 1),
            "tenure_months": rng.integers(1, 72, rows),
            "monthly_charges": rng.normal(65, 20, rows).clip(15, 150).round(2),
            "support_calls": rng.poisson(2.0, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.35, 0.15]),
            "usage_gb": rng.gamma(2.0, 10.0, rows).round(1),
            "contract": rng.choice(["monthly", "yearly"], rows, p=[0.6, 0.4]),
        }
    )


def churn_logit(frame: pd.DataFrame) -> pd.Series:
    """How likely a customer with these feature values is to churn (non-linear in them)."""
    return (
        -1.0
        - 0.04 * frame["tenure_months"]
        + 0.025 * (frame["monthly_charges"] - 65)
        + 0.45 * frame["support_calls"]
        + 0.8 * (frame["contract"] == "monthly")
        - 0.02 * frame["usage_gb"]
        + 0.6 * ((frame["plan"] == "basic") & (frame["support_calls"] > 2))
    )


def make_history(
    rows: int = 3000, days: int = 4, seed: int = 7, now: dt.datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily snapshots of every customer (the newest an hour before ``now``) and one churn label each."""
    rng = np.random.default_rng(seed)
    customers = make_customers(rows, rng)
    now = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    last = now - dt.timedelta(hours=1)
    snapshots = []
    for day in range(days):
        share = (day + 1) / days  # calls and usage accumulate over the month
        snapshot = customers.assign(
            ts=last - dt.timedelta(days=days - 1 - day),
            support_calls=np.floor(customers["support_calls"] * share).astype("int64"),
            usage_gb=(customers["usage_gb"] * share).round(1),
        )
        snapshots.append(snapshot)
    history = pd.concat(snapshots, ignore_index=True)
    # Each label is observed 1-23 hours after one of the older snapshots, decided by that snapshot.
    label_day = rng.integers(0, days - 1, rows)
    seen = history.iloc[label_day * rows + np.arange(rows)].reset_index(drop=True)
    churned = rng.random(rows) < 1 / (1 + np.exp(-churn_logit(seen)))
    labels = pd.DataFrame(
        {
            "user_id": customers["user_id"],
            "ts": seen["ts"] + pd.to_timedelta(rng.integers(1, 24, rows), unit="h"),
            "churned": churned.astype("int64"),
        }
    )
    columns = ["user_id", "ts", *(c for c in customers.columns if c != "user_id")]
    return history[columns], labels


def write_history(folder: Path, *, rows: int = 3000, days: int = 4, seed: int = 7) -> tuple[Path, Path]:
    """Write the snapshots and the labels as Parquet files in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    history, labels = make_history(rows, days, seed)
    paths = folder / SNAPSHOTS, folder / LABELS
    for frame, path in zip((history, labels), paths, strict=True):
        partial = path.with_suffix(".tmp")
        frame.to_parquet(partial, index=False)
        partial.replace(path)  # a reader never sees half a file
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("churn-data")
    for written in write_history(out):
        print(f"wrote {written}")
