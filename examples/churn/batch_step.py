"""The demo's batch step: a file of customers scored by ``predict_batch``, the way a nightly job would.

The customers go to a Parquet file, ``predict_batch`` streams it through the champion
into a scores file keeping ``user_id`` beside each prediction, every score is checked
against in-process ``predict``, and the job's lineage (customers in, model version,
scores out) is printed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

import shipyard as sy
from shipyard.serving.batch import predict_batch


def score_file(frame: pd.DataFrame, console: Console, model_ref: str = "churn@champion") -> None:
    """Score ``frame`` (``user_id`` and the model's features) in batch; check it and print one line."""
    with tempfile.TemporaryDirectory(prefix="churn-batch-") as folder:
        source, output = Path(folder) / "customers.parquet", Path(folder) / "churn_scores.parquet"
        frame.to_parquet(source, row_group_size=max(1, len(frame) // 4))
        result = predict_batch(model_ref, source, output, id_columns=["user_id"], batch_size=256)
        scores = pd.read_parquet(output)
    expected = np.asarray(sy.load_model(model_ref).predict(frame.drop(columns=["user_id"])))
    assert scores["user_id"].tolist() == frame["user_id"].tolist()
    assert np.array_equal(scores["prediction"].to_numpy(), expected), "batch scores differ from predict"
    console.print(
        f"batch: {result.rows} customers scored by {result.model_version} in {result.seconds:.1f}s, "
        f"identical to predict; lineage {result.input_dataset} -> {result.model_version} -> {result.output_dataset}",
        markup=False,
    )
