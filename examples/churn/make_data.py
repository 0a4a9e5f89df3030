"""Regenerate the bundled synthetic churn dataset (``churn.csv``); deterministic for a seed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def make_churn(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Customers with tenure, usage and support history; churn depends on them non-linearly."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    monthly = rng.normal(65, 20, rows).clip(15, 150).round(2)
    calls = rng.poisson(1.5, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.35, 0.15])
    usage = rng.gamma(2.0, 10.0, rows).round(1)
    contract = rng.choice(["monthly", "yearly"], rows, p=[0.6, 0.4])
    logit = (
        -1.0
        - 0.04 * tenure
        + 0.025 * (monthly - 65)
        + 0.45 * calls
        + 0.8 * (contract == "monthly")
        - 0.02 * usage
        + 0.6 * ((plan == "basic") & (calls > 2))
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1),
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "support_calls": calls,
            "plan": plan,
            "usage_gb": usage,
            "contract": contract,
            "churned": churned.astype(int),
        }
    )


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("churn.csv")
    make_churn().to_csv(out, index=False)
    print(f"wrote {out}")
