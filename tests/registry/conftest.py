"""Small training data for registry tests: a few dozen rows, so every model fits in milliseconds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def churn() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Features ``tenure`` (int), ``charges`` (float), ``age`` (int) and a 0/1 label that depends on them."""
    rng = np.random.default_rng(7)
    n = 80
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 60, n),
            "charges": rng.normal(70.0, 20.0, n).round(2),
            "age": rng.integers(18, 80, n),
        }
    )
    label = ((frame["charges"] - 70) / 20 - (frame["tenure"] - 30) / 30 + rng.normal(0, 0.3, n) > 0).astype(int)
    return frame, label.to_numpy()
