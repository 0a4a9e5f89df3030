"""Tracking benchmark: the same workload through shipyard (in this process) and MLflow (a subprocess).

Run ``bash benchmarks/setup_peers.sh`` once, then::

    .venv/bin/python benchmarks/tracking.py [--quick] [--json results.json]
    .venv/bin/python benchmarks/tracking.py --scale     # shipyard alone, 1k to 100k runs, both engines

Each tool gets a fresh temporary folder with a SQLite metadata store and local artifacts.
MLflow runs from ``benchmarks/.venv-peers`` so it never enters shipyard's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import shipyard as sy
from _scale import render_scale, run_scale
from _workload import (
    COMMON_FILTER,
    RICH_FILTER,
    Workload,
    best_of,
    expected_matches,
    loss,
    run_metrics,
    run_params,
)
from shipyard.store.entities import MetricPoint

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
MLFLOW_ENV = {
    # Telemetry off: nothing leaves the machine and no reporting thread competes for the CPU.
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    # Async logging flushes batches every second, MLflow's closest match to shipyard's buffer.
    "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": "1",
}


@dataclass(frozen=True, slots=True)
class Comparison:
    """One line of the table: which figure of each tool to compare, and the ratio we promised."""

    label: str
    shipyard_key: str
    mlflow_key: str
    unit: str
    target: float | None = None


def comparisons(work: Workload) -> list[Comparison]:
    """The table's lines; every figure is a cost, so MLflow/shipyard is how many times faster shipyard is."""
    points, batch = f"{work.batch_points:,}", f"{work.batch_size:,}"
    return [
        Comparison("log_metric: buffered vs async", "log_metric_buffered_us", "log_metric_buffered_us", "µs/call", 30),
        Comparison(
            "log_metric: defaults (buffered vs sync)", "log_metric_buffered_us", "log_metric_sync_us", "µs/call"
        ),
        Comparison("log_metric: synchronous", "log_metric_sync_us", "log_metric_sync_us", "µs/call"),
        Comparison(f"log {points} points, batches of {batch}", "log_batch_s", "log_batch_s", "s"),
        Comparison(f"read a {points}-point history", "history_read_s", "history_read_s", "s", 10),
        Comparison("create a run (2 params, 2 metrics)", "create_run_ms", "create_run_ms", "ms/run", 20),
        Comparison("search_runs: AND filter", "search_s", "search_s", "s", 5),
        Comparison("search_runs: or/in filter (*)", "search_rich_s", "search_rich_s", "s"),
    ]


# shipyard's half -------------------------------------------------------------------------
def run_shipyard(work: Workload, folder: Path) -> dict[str, Any]:
    """Run the workload through shipyard's public API against a fresh store in ``folder``.

    The module functions (``sy.start_run``, ``sy.log_metric``) as ``mlflow.*``, and a ``Client``
    for what MLflow's half asks of ``MlflowClient`` (batches, histories, searches).
    """
    os.environ["SHIPYARD_STORE"] = f"sqlite:///{folder / 'shipyard.db'}"
    os.environ["SHIPYARD_ARTIFACTS"] = (folder / "artifacts").as_uri()
    client = sy.Client()  # settings are read now, from the variables just set
    with sy.start_run("warm-up"):  # lazy imports, migrations, the flusher thread: outside the timings
        sy.log_params({"p": "1"})
        sy.log_metric("m", 1.0)
        sy.log_metric("m", 2.0, step=1, synchronous=True)
    results: dict[str, Any] = {"version": metadata.version("shipyard")}
    results |= _shipyard_log_metric(client, work)
    results |= _shipyard_batches_and_history(client, work)
    results |= _shipyard_runs_and_search(client, work)
    return results


def _shipyard_log_metric(client: sy.Client, work: Workload) -> dict[str, Any]:
    with sy.start_run("log-metric-sync"):
        start = time.perf_counter()
        for step in range(work.sync_calls):
            sy.log_metric("loss", loss(step), step=step, synchronous=True)
        sync_s = time.perf_counter() - start

    with sy.start_run("log-metric-buffered") as run:
        start = time.perf_counter()
        for step in range(work.buffered_calls):
            sy.log_metric("loss", loss(step), step=step)
        loop_s = time.perf_counter() - start
        sy.flush()
        total_s = time.perf_counter() - start
    written = len(client.get_metric_history(run.id, "loss"))
    if written != work.buffered_calls:
        raise SystemExit(f"shipyard had written {written} of {work.buffered_calls} points when flush() returned")
    return {
        "log_metric_sync_us": sync_s / work.sync_calls * 1e6,
        "log_metric_buffered_us": total_s / work.buffered_calls * 1e6,
        "log_metric_buffered_loop_s": loop_s,
        "log_metric_buffered_flush_s": total_s - loop_s,
    }


def _shipyard_batches_and_history(client: sy.Client, work: Workload) -> dict[str, Any]:
    with sy.start_run("log-batch") as run:
        start = time.perf_counter()
        for first in range(0, work.batch_points, work.batch_size):
            now = time.time()
            steps = range(first, min(first + work.batch_size, work.batch_points))
            client.log_batch(run.id, [MetricPoint("loss", loss(s), s, now) for s in steps])
        batch_s = time.perf_counter() - start
    history_s, history = best_of(work.repeats, lambda: client.get_metric_history(run.id, "loss"))
    return {"log_batch_s": batch_s, "history_read_s": history_s, "history_points": len(history)}


def _shipyard_runs_and_search(client: sy.Client, work: Workload) -> dict[str, Any]:
    client.create_experiment("runs")  # MLflow's half also creates it before timing
    start = time.perf_counter()
    for index in range(work.runs):
        with sy.start_run("runs"):
            sy.log_params(run_params(index))
            sy.log_metrics(run_metrics(index))
    create_s = time.perf_counter() - start

    def search(query: str) -> list[Any]:
        return client.search_runs("runs", filter=query, max_results=work.runs)

    search_s, found = best_of(work.repeats, lambda: search(COMMON_FILTER))
    rich_s, rich_found = best_of(work.repeats, lambda: search(RICH_FILTER))
    return {
        "create_run_ms": create_s / work.runs * 1e3,
        "search_s": search_s,
        "search_count": len(found),
        "search_rich_s": rich_s,
        "search_rich_count": len(rich_found),
    }


# MLflow's half ---------------------------------------------------------------------------
def run_mlflow(work: Workload, folder: Path) -> dict[str, Any]:
    """Run the workload through MLflow in the peers' virtualenv; its last line of output is JSON."""
    if not PEERS_PYTHON.exists():
        raise SystemExit(f"{PEERS_PYTHON} is missing: run `bash benchmarks/setup_peers.sh` first")
    command = [str(PEERS_PYTHON), str(HERE / "_mlflow_tracking.py"), "--dir", str(folder), "--workload", work.to_json()]
    done = subprocess.run(command, cwd=folder, env=os.environ | MLFLOW_ENV, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the MLflow half failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"the MLflow half printed nothing:\n{done.stderr[-4000:]}")
    results: dict[str, Any] = json.loads(lines[-1])
    return results


# report ----------------------------------------------------------------------------------
def check_counts(work: Workload, shipyard: Mapping[str, Any], mlflow: Mapping[str, Any]) -> None:
    """Both tools must have done the same work: same history length, same search results."""
    common, rich = expected_matches(work.runs)
    wanted = {"history_points": work.batch_points, "search_count": common, "search_rich_count": rich}
    for key, value in wanted.items():
        got = {"shipyard": shipyard[key], "MLflow": mlflow[key]}
        if any(v != value for v in got.values()):
            raise SystemExit(f"{key}: expected {value}, got {got}")


def compare(work: Workload, shipyard: Mapping[str, Any], mlflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per table line: both figures, the ratio, the target and whether it is met."""
    rows = []
    for c in comparisons(work):
        ours, theirs = shipyard[c.shipyard_key], mlflow[c.mlflow_key]
        ratio = theirs / ours
        met = None if c.target is None else ratio >= c.target
        rows.append({**asdict(c), "shipyard": ours, "mlflow": theirs, "ratio": ratio, "met": met})
    return rows


def _figure(value: float, unit: str) -> str:
    digits = 1 if value >= 100 else 2 if value >= 1 else 4
    return f"{value:,.{digits}f} {unit}"


def _ratio(ratio: float) -> str:
    return f"{ratio:,.1f}x faster" if ratio >= 1 else f"{1 / ratio:,.1f}x slower"


def _verdict(row: Mapping[str, Any]) -> str:
    if row["target"] is None:
        return "—"
    mark = "[green]met[/green]" if row["met"] else "[red]missed[/red]"
    return f"≥{row['target']:g}x: {mark}"


def render(work: Workload, rows: list[dict[str, Any]], shipyard: Mapping[str, Any], mlflow: Mapping[str, Any]) -> Table:
    """The Rich table printed at the end."""
    table = Table(
        title=f"Tracking: shipyard {shipyard['version']} vs MLflow {mlflow['version']} (SQLite, local files)",
        caption=f"Reads and searches: best of {work.repeats}. (*) MLflow has no or/in: 4 AND queries, united.",
    )
    table.add_column("workload", no_wrap=True)
    table.add_column("shipyard", justify="right")
    table.add_column("MLflow", justify="right")
    table.add_column("MLflow / shipyard", justify="right")
    table.add_column("target", justify="center")
    for row in rows:
        table.add_row(
            row["label"],
            _figure(row["shipyard"], row["unit"]),
            _figure(row["mlflow"], row["unit"]),
            _ratio(row["ratio"]),
            _verdict(row),
        )
    return table


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def run_half(
    console: Console, name: str, half: Callable[[Workload, Path], dict[str, Any]], work: Workload
) -> dict[str, Any]:
    """Run one tool's half in a fresh temporary folder, noting how busy the machine was."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder:
        # Other work on a 2-core machine skews every figure: say how much there was.
        load = os.getloadavg()[0]
        console.print(f"{name}: running in {folder} (load average {load:.2f}) ...")
        started = time.perf_counter()
        results = half(work, Path(folder))
        console.print(f"{name}: done in {time.perf_counter() - started:.1f} s")
    return {**results, "load_average_1m": load}


def main() -> None:
    """Run both halves, check they did the same work, print the table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every count divided by ten: a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--scale", action="store_true", help="time search, runs table, history at 1k-1M rows")
    args = parser.parse_args()
    work = Workload.sized(quick=args.quick)
    console = Console()
    if not console.is_terminal:  # piped into a file or a CI log: don't wrap the table at 80 columns
        console = Console(width=160)
    if args.scale:
        console.print(render_scale(run_scale(console.print)))
        return

    mlflow = run_half(console, "MLflow", run_mlflow, work)
    shipyard = run_half(console, "shipyard", run_shipyard, work)
    check_counts(work, shipyard, mlflow)
    rows = compare(work, shipyard, mlflow)
    console.print(render(work, rows, shipyard, mlflow))
    if args.json:
        report = {"machine": machine(), "workload": asdict(work), "shipyard": shipyard, "mlflow": mlflow}
        args.json.write_text(json.dumps({**report, "comparisons": rows}, indent=2) + "\n", encoding="utf-8")
        console.print(f"results written to {args.json}")
    missed = [row["label"] for row in rows if row["met"] is False]
    if missed:
        console.print(f"[red]missed targets:[/red] {'; '.join(missed)}")


if __name__ == "__main__":
    main()
