"""Batch prediction benchmark: ``shipyard predict`` against ``mlflow models predict`` and an in-process pandas floor.

Run ``bash benchmarks/setup_peers.sh`` once (MLflow 3.17 in ``benchmarks/.venv-peers``), then::

    .venv/bin/python benchmarks/batch.py [--rows 2000000] [--json results.json]

The workload: ``--rows`` rows of 20 float features (``f0``..``f19``) and a ``row_id``, in
one Parquet file (row groups of 100,000 rows), scored by one scikit-learn model saved once
and given to every side: a HistGradientBoostingRegressor (``--model hgb``, 50 trees: the
model's own time dominates) or a Ridge regression (``--model linear``: the model costs
almost nothing, so what is measured is each tool's reading, converting and writing).
Each side runs as a process of its own at 1x and at 2x the rows, timed end to end
(start-up, model load, reading, scoring, writing), with its peak RSS (the kernel's
high-water mark) and ``OMP_NUM_THREADS=1`` everywhere. Besides end-to-end rows/s, each
side's marginal rows/s (the 2x run's extra rows over its extra seconds) leaves out the
costs every run pays whatever its size (interpreter and library imports, model loading):

- shipyard: ``shipyard predict bench@champion in.parquet out.parquet`` (the CLI, with its
  default lineage: the input and output are stored as dataset versions);
- MLflow: ``mlflow models predict -m MODEL -i in.csv -t csv -o out.json --env-manager local``,
  its documented batch command (it reads CSV or JSON, not Parquet; the CSV holds the
  features only, written before the clock starts);
- the floor: a plain pandas loop in a fresh interpreter, ``pd.read_parquet``, ``predict`` in
  slices of the same batch size, ``to_parquet``: what scoring costs with no framework.

Every output is read back and compared with the floor's predictions, row by row (shipyard's
ids too) before any figure is printed; a side that fails or answers one row wrongly prints
no figure and no ratio is computed against it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from serving import QUIET, TRUSTED  # the peers' telemetry off, skops' trusted tree type

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".venv-peers" / "bin"
SHIPYARD = Path(sys.executable).with_name("shipyard")
FEATURES = [f"f{i}" for i in range(20)]
ROW_GROUP = 100_000
BATCH = 65_536
PEAK = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(f"peak_kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(code)
"""
FLOOR = """
import pickle, sys
import numpy as np, pandas as pd
model_path, source, out, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = pickle.load(open(model_path, "rb"))
frame = pd.read_parquet(source)
features = frame[[f"f{i}" for i in range(20)]].to_numpy()
pieces = [model.predict(features[i : i + batch]) for i in range(0, len(frame), batch)]
pd.DataFrame({"row_id": frame["row_id"], "prediction": np.concatenate(pieces)}).to_parquet(out)
"""


@dataclass
class Figure:
    """One side's verified run."""

    side: str
    rows: int
    seconds: float
    peak_rss_mib: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def write_input(path: Path, rows: int, seed: int) -> None:
    """``rows`` rows in row groups of ``ROW_GROUP``, generated and written one group at a time."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([("row_id", pa.int64()), *[(f, pa.float64()) for f in FEATURES]])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            columns = [pa.array(np.arange(start, start + n))] + [pa.array(rng.normal(size=n)) for _ in FEATURES]
            writer.write_table(pa.table(columns, schema=schema), row_group_size=ROW_GROUP)


def timed(cmd: list[str], env: dict[str, str], cwd: Path, limit: float) -> tuple[float, float]:
    """Run ``cmd``; its wall seconds and its peak RSS (MiB). Raises when it fails.

    The peak is the kernel's high-water mark (``getrusage(RUSAGE_CHILDREN)`` in a small
    wrapper that only runs ``cmd``): exact, with no sampling gaps, and not inflated by a
    forked child briefly counting its parent's pages twice. It is the largest process's
    peak: each side does its work in one process.
    """
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", PEAK, *cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd[0]} took more than {limit:.0f} s") from None
    seconds = time.perf_counter() - started
    *_, last = done.stdout.strip().splitlines() or [""]
    if done.returncode != 0 or not last.startswith("peak_kib="):
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}")
    return seconds, int(last.removeprefix("peak_kib=")) / 1024


def check(side: str, got: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> None:
    """Every prediction equal to the floor's (within 1e-9: MLflow's CSV parser may round an input's last digit)."""
    if got.shape != expected.shape:
        raise AssertionError(f"{side}: {got.shape[0]} predictions, expected {expected.shape[0]}")
    wrong = np.flatnonzero(~np.isclose(got, expected, rtol=0, atol=1e-9))
    if wrong.size:
        raise AssertionError(f"{side}: {wrong.size} predictions differ, first at row {wrong[0]}")


def run_floor(tmp: Path, source: Path, env: dict[str, str], rows: int) -> tuple[Figure, np.ndarray[Any, Any]]:
    out = tmp / f"floor-{source.stem}.parquet"
    seconds, rss = timed(
        [sys.executable, "-c", FLOOR, str(tmp / "model.pkl"), str(source), str(out), str(BATCH)], env, tmp, 1800
    )
    frame = pd.read_parquet(out)
    if frame["row_id"].tolist() != list(range(rows)):
        raise AssertionError("floor: row ids out of order")
    return Figure(f"pandas floor {rows // 1000:,}k", rows, seconds, rss), frame["prediction"].to_numpy()


def run_shipyard(tmp: Path, source: Path, env: dict[str, str], rows: int, expected: np.ndarray[Any, Any]) -> Figure:
    out = tmp / f"shipyard-{source.stem}.parquet"
    cmd = [str(SHIPYARD), "predict", "bench@champion", str(source), str(out), "--batch-size", str(BATCH)]
    seconds, rss = timed(cmd, env, tmp, 1800)
    frame = pd.read_parquet(out)
    if frame["row_id"].tolist() != list(range(rows)):
        raise AssertionError("shipyard: the id column does not hold the input's row ids in order")
    check("shipyard", frame["prediction"].to_numpy(), expected)
    return Figure(f"shipyard {rows // 1000:,}k", rows, seconds, rss)


def run_mlflow(tmp: Path, source: Path, env: dict[str, str], rows: int, expected: np.ndarray[Any, Any]) -> Figure:
    model_dir = tmp / "mlflow-model"
    save = (
        None
        if model_dir.exists()
        else (
            f"import pickle, mlflow.sklearn; m = pickle.load(open({str(tmp / 'model.pkl')!r}, 'rb'));"
            f"mlflow.sklearn.save_model(m, {str(model_dir)!r}, skops_trusted_types={TRUSTED!r})"
        )
    )
    if save is not None:
        subprocess.run([str(PEERS / "python"), "-c", save], env=env, check=True, timeout=300, capture_output=True)
    csv = tmp / f"{source.stem}.csv"
    pacsv.write_csv(pq.read_table(source, columns=FEATURES), csv)
    out = tmp / f"mlflow-{source.stem}.json"
    cmd = [str(PEERS / "mlflow"), "models", "predict", "-m", str(model_dir), "-i", str(csv), "-t", "csv"]
    cmd += ["-o", str(out), "--env-manager", "local"]
    peer_env = {**env, "PATH": f"{PEERS}{os.pathsep}{env.get('PATH', '')}"}
    seconds, rss = timed(cmd, peer_env, tmp, 3600)
    check("mlflow", np.asarray(json.loads(out.read_text())["predictions"], dtype=np.float64), expected)
    return Figure(f"mlflow {rows // 1000:,}k", rows, seconds, rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the 1x input (default 2,000,000)")
    parser.add_argument("--model", choices=["hgb", "linear"], default="hgb", help="the model scored (default hgb)")
    parser.add_argument("--skip-mlflow", action="store_true", help="shipyard and the floor only")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if not args.skip_mlflow and not (PEERS / "mlflow").exists():
        sys.exit(f"MLflow is not installed in {PEERS.parent}: run bash benchmarks/setup_peers.sh (or --skip-mlflow)")
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="shipyard-batch-bench-") as name:
        tmp = Path(name)
        env = {**os.environ, **QUIET, "SHIPYARD_STORE": f"sqlite:///{tmp / 'shipyard.db'}"}
        env["SHIPYARD_ARTIFACTS"] = f"file://{tmp / 'artifacts'}"
        os.environ.update({k: env[k] for k in ("SHIPYARD_STORE", "SHIPYARD_ARTIFACTS")})
        one, two = tmp / "in_1x.parquet", tmp / "in_2x.parquet"
        write_input(one, args.rows, seed=1)
        write_input(two, 2 * args.rows, seed=2)
        train = pq.read_table(one, columns=FEATURES).slice(0, 20_000).to_pandas()
        target = train["f0"] * 2 - train["f1"] ** 2 + np.sin(train["f2"] * 3)
        estimator = HistGradientBoostingRegressor(max_iter=50, random_state=0) if args.model == "hgb" else Ridge()
        model = estimator.fit(train, target)
        (tmp / "model.pkl").write_bytes(pickle.dumps(model))
        import shipyard as sy

        version = sy.log_model(model, name="bench", input_example=train.head(5))
        sy.set_alias("bench", "champion", version.version)

        warm = tmp / "warm.parquet"  # one small untimed pass each: imports and caches start warm for every side
        write_input(warm, 1_000, seed=3)
        _, warm_expected = run_floor(tmp, warm, env, 1_000)
        run_shipyard(tmp, warm, env, 1_000, warm_expected)
        if not args.skip_mlflow:
            run_mlflow(tmp, warm, env, 1_000, warm_expected)
        figures: dict[str, list[Figure]] = {"floor": [], "shipyard": [], "mlflow": []}
        for source, rows in ((one, args.rows), (two, 2 * args.rows)):
            floor, expected = run_floor(tmp, source, env, rows)
            figures["floor"].append(floor)
            figures["shipyard"].append(run_shipyard(tmp, source, env, rows, expected))
            if not args.skip_mlflow:
                figures["mlflow"].append(run_mlflow(tmp, source, env, rows, expected))
    print(f"model: {type(model).__name__}; batch size {BATCH:,}; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    report(figures, load_start, os.getloadavg(), args.json)


def report(
    figures: dict[str, list[Figure]], load_start: tuple[float, ...], load_end: tuple[float, ...], path: Path | None
) -> None:
    """The table, then the ratios; every figure here comes from a verified run.

    Besides end-to-end rows/s (start-up, model load and lineage included), each side's
    marginal rows/s: the extra rows of the 2x input over the extra seconds they took, which
    leaves out what a run pays whatever its size.
    """
    print(f"{'side':<24}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>15}")
    for runs in figures.values():
        for f in runs:
            print(f"{f.side:<24}{f.rows:>12,}{f.seconds:>10.2f}{f.rows_per_second:>12,.0f}{f.peak_rss_mib:>15,.0f}")
    marginal = {side: _marginal(runs) for side, runs in figures.items() if len(runs) == 2}
    print(
        "marginal rows/s (2x minus 1x): " + ", ".join(f"{s} {v:,.0f}" if v else f"{s} n/a" for s, v in marginal.items())
    )
    ship, floor = figures["shipyard"], figures["floor"]
    print(
        f"shipyard reaches {ship[0].rows_per_second / floor[0].rows_per_second:.0%} of the pandas floor's rows/s "
        f"end to end"
        + (
            f", {marginal['shipyard'] / marginal['floor']:.0%} marginal"
            if marginal["shipyard"] and marginal["floor"]
            else ""
        )
    )
    for side, runs in figures.items():
        if len(runs) < 2:  # a side skipped (--skip-mlflow)
            continue
        print(f"{side} peak RSS at 2x input / at 1x: {runs[1].peak_rss_mib / runs[0].peak_rss_mib:.2f}")
    if figures["mlflow"]:
        mlflow = figures["mlflow"]
        line = f"shipyard vs mlflow models predict: {ship[0].rows_per_second / mlflow[0].rows_per_second:.1f}x rows/s"
        line += f" end to end at 1x, {ship[1].rows_per_second / mlflow[1].rows_per_second:.1f}x at 2x"
        if marginal.get("shipyard") and marginal.get("mlflow"):
            line += f", {marginal['shipyard'] / marginal['mlflow']:.1f}x marginal"
        print(line)
    print(
        f"load average: {' '.join(f'{x:.2f}' for x in load_start)} at the start, "
        f"{' '.join(f'{x:.2f}' for x in load_end)} at the end"
    )
    if path is not None:
        rows = [{**asdict(f), "rows_per_second": f.rows_per_second} for runs in figures.values() for f in runs]
        document = {"figures": rows, "marginal": marginal, "load_start": load_start, "load_end": load_end}
        path.write_text(json.dumps(document, indent=2))


def _marginal(runs: list[Figure]) -> float | None:
    extra = runs[1].seconds - runs[0].seconds
    return (runs[1].rows - runs[0].rows) / extra if extra > 0 else None


if __name__ == "__main__":
    main()
