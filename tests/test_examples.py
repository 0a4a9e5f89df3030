"""Every example runs end to end (``make demo`` is examples/churn/demo.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_churn_demo_runs_the_whole_lifecycle(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["COLUMNS"] = "160"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "churn" / "demo.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "churn@champion → version" in out
    # Printed as plain values (rich once read "[np.int64(0), ...]" as markup and printed nothing).
    predicted = re.search(r"churn@champion predicts \[([01]), ([01]), ([01])\] for the first three", out)
    assert predicted is not None, out[:3000]
    assert "Intended use" in out  # the model card
    assert "dataset churn-train@1 (input to)" in out  # the lineage tree
    # The training frame came from the feature store, and the model knows its features.
    assert "dataset churn-features@1 (input to)" in out
    assert "churn@champion was trained on feature service churn_features@1" in out
    assert "feature_service churn_features@1 (features for)" in out
    assert "features for → model_version churn/2" in out  # a feature view's lineage: who uses it
    assert "200/200 requests OK" in out  # served, under concurrent traffic
    assert "200/200 answers equal in-process predict on the online features" in out  # by user id alone
    assert "shipyard_batch_rows_count" in out
    assert (tmp_path / ".shipyard" / "shipyard.db").exists()  # the embedded default, nothing else
