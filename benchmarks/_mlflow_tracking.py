"""The MLflow half of the tracking benchmark; runs in the peers' virtualenv and prints JSON.

Started by ``benchmarks/tracking.py``, which sets the telemetry switches off and compares
what this prints with shipyard's figures:

    benchmarks/.venv-peers/bin/python benchmarks/_mlflow_tracking.py --dir DIR --workload JSON
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

from _workload import (
    COMMON_FILTER,
    RICH_AS_AND_QUERIES,
    Workload,
    best_of,
    loss,
    run_metrics,
    run_params,
)


def _experiment(client: MlflowClient, folder: Path, name: str) -> str:
    # An explicit artifact root, or MLflow writes ./mlartifacts into whatever the cwd is.
    return client.create_experiment(name, artifact_location=(folder / "artifacts" / name).as_uri())


def _warm_up(client: MlflowClient, folder: Path) -> None:
    """One run touching every code path, so lazy imports and thread pools start outside the timings."""
    with mlflow.start_run(experiment_id=_experiment(client, folder, "warm-up")):
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 1.0)
        mlflow.log_metric("m", 2.0, step=1, synchronous=False)
        mlflow.flush_async_logging()


def _log_metric(client: MlflowClient, folder: Path, work: Workload) -> dict[str, Any]:
    with mlflow.start_run(experiment_id=_experiment(client, folder, "log-metric-sync")):
        start = time.perf_counter()
        for step in range(work.sync_calls):
            mlflow.log_metric("loss", loss(step), step=step)
        sync_s = time.perf_counter() - start

    with mlflow.start_run(experiment_id=_experiment(client, folder, "log-metric-async")) as run:
        start = time.perf_counter()
        for step in range(work.buffered_calls):
            mlflow.log_metric("loss", loss(step), step=step, synchronous=False)
        loop_s = time.perf_counter() - start
        mlflow.flush_async_logging()
        total_s = time.perf_counter() - start
    written = len(client.get_metric_history(run.info.run_id, "loss"))
    if written != work.buffered_calls:
        raise SystemExit(f"MLflow had written {written} of {work.buffered_calls} points after flush_async_logging()")
    return {
        "log_metric_sync_us": sync_s / work.sync_calls * 1e6,
        "log_metric_buffered_us": total_s / work.buffered_calls * 1e6,
        "log_metric_buffered_loop_s": loop_s,
        "log_metric_buffered_flush_s": total_s - loop_s,
    }


def _batches_and_history(client: MlflowClient, folder: Path, work: Workload) -> dict[str, Any]:
    with mlflow.start_run(experiment_id=_experiment(client, folder, "log-batch")) as run:
        run_id = run.info.run_id
        start = time.perf_counter()
        for first in range(0, work.batch_points, work.batch_size):
            now_ms = int(time.time() * 1000)
            steps = range(first, min(first + work.batch_size, work.batch_points))
            client.log_batch(run_id, metrics=[Metric("loss", loss(s), now_ms, s) for s in steps])
        batch_s = time.perf_counter() - start
    history_s, history = best_of(work.repeats, lambda: client.get_metric_history(run_id, "loss"))
    return {"log_batch_s": batch_s, "history_read_s": history_s, "history_points": len(history)}


def _runs_and_search(client: MlflowClient, folder: Path, work: Workload) -> dict[str, Any]:
    experiment_id = _experiment(client, folder, "runs")
    start = time.perf_counter()
    for index in range(work.runs):
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_params(run_params(index))
            mlflow.log_metrics(run_metrics(index))
    create_s = time.perf_counter() - start

    def search(query: str) -> list[Any]:
        return list(client.search_runs([experiment_id], query, max_results=work.runs))

    def search_rich() -> set[str]:
        return {r.info.run_id for query in RICH_AS_AND_QUERIES for r in search(query)}

    search_s, found = best_of(work.repeats, lambda: search(COMMON_FILTER))
    rich_s, rich_found = best_of(work.repeats, search_rich)
    return {
        "create_run_ms": create_s / work.runs * 1e3,
        "search_s": search_s,
        "search_count": len(found),
        "search_rich_s": rich_s,
        "search_rich_count": len(rich_found),
    }


def main() -> None:
    """Run the workload against a fresh SQLite store in ``--dir`` and print the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="empty folder for mlflow.db and artifacts")
    parser.add_argument("--workload", type=Workload.from_json, required=True, help="Workload.to_json()")
    args = parser.parse_args()
    folder, work = args.dir.resolve(), args.workload

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = MlflowClient()
    _warm_up(client, folder)
    results: dict[str, Any] = {"version": metadata.version("mlflow")}
    results |= _log_metric(client, folder, work)
    results |= _batches_and_history(client, folder, work)
    results |= _runs_and_search(client, folder, work)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
