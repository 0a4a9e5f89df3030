"""shipyard's drift report against Evidently 0.7's DataDriftPreset, on the same two tables.

One command generates the data and runs both sides on it:

* data: a reference and a current table of 100,000 rows x 20 columns (16 numeric of several
  shapes, 4 categorical); 5 columns of the current are shifted (3 numeric mean shifts, a
  numeric variance change, a categorical mix change), the other 15 are fresh draws of the
  reference's distributions. ``--scale 0.1`` divides the rows by ten;
* the drift report from in-memory pandas frames, and its HTML page: shipyard's
  ``drift`` + ``render_html`` and Evidently's ``Report([DataDriftPreset()]).run`` +
  ``save_html`` (median of ``--repeat`` runs each, imports and Parquet reading outside the clock;
  both use the same per-type defaults: Wasserstein distance / reference std at 0.1 for numeric
  columns, Jensen-Shannon distance at 0.1 for categorical ones, above 1,000 rows);
* the profile-based path: the reference's profile stored as JSON once, then the current streamed
  from Parquet in batches against it, in a fresh process whose peak RSS (``VmHWM``) is compared
  with a fresh process that holds both tables in memory for the same report.

Every answer is checked against an independent reference before anything is printed: scipy's
``wasserstein_distance`` over the reference's standard deviation and scipy's ``jensenshannon``
over category shares, computed on the raw columns. Both sides must flag exactly the five
shifted columns, and shipyard's scores must be within 0.03 of the reference's (its sketches'
error; see ``shipyard.datasets._sketch``). Any failed check prints no figures and exits 1.

Usage::

    bash benchmarks/setup_evidently.sh                   # once: benchmarks/.venv-evidently
    .venv/bin/python benchmarks/monitoring.py            # the full size
    .venv/bin/python benchmarks/monitoring.py --scale 0.1 --repeat 1   # a quick run

Evidently runs from its own virtualenv as a subprocess (this file with ``--peer``), which
prints its timings and flagged columns as JSON; telemetry is off (``DO_NOT_TRACK=true``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVIDENTLY_PYTHON = HERE / ".venv-evidently" / "bin" / "python"
ROWS = 100_000
SHIFTED = ["num_00", "num_05", "num_10", "num_13", "cat_2"]
TOLERANCE = 0.03


# data ------------------------------------------------------------------------------------
def generate(rows: int, seed: int, *, shifted: bool) -> Any:
    """20 columns: 16 numeric (normal, gamma, uniform, lognormal in turn), 4 categorical."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(16):
        kind = i % 4
        loc = 0.6 if shifted and f"num_{i:02d}" in ("num_00", "num_05", "num_10") else 0.0
        scale = 2.0 if shifted and f"num_{i:02d}" == "num_13" else 1.0
        if kind == 0:
            values = rng.normal(0.0, 1.0, rows)
        elif kind == 1:
            values = rng.gamma(2.0, 1.0, rows)
        elif kind == 2:
            values = rng.uniform(-2.0, 2.0, rows)
        else:
            values = rng.lognormal(0.0, 0.5, rows)
        centre = float(np.median(values))
        columns[f"num_{i:02d}"] = centre + (values - centre) * scale + loc * float(np.std(values))
    letters = list("abcdefgh")
    base = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.06, 0.05, 0.04])
    moved = np.array([0.1, 0.1, 0.15, 0.15, 0.15, 0.15, 0.1, 0.1])
    for j in range(4):
        p = moved if shifted and f"cat_{j}" == "cat_2" else base
        columns[f"cat_{j}"] = rng.choice(letters, rows, p=p)
    return pd.DataFrame(columns)


def expected_scores(reference: Any, current: Any) -> dict[str, float]:
    """The independent answer: scipy on the raw columns."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    scores = {}
    for name in reference.columns:
        if name.startswith("num_"):
            ref = reference[name].to_numpy()
            scores[name] = float(wasserstein_distance(ref, current[name].to_numpy()) / np.std(ref, ddof=1))
        else:
            keys = sorted(set(reference[name]) | set(current[name]))
            r = reference[name].value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
            c = current[name].value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
            scores[name] = float(jensenshannon(r / r.sum(), c / c.sum()))
    return scores


# shipyard ---------------------------------------------------------------------------------
def run_shipyard(reference: Any, current: Any, out: Path, repeat: int) -> dict[str, Any]:
    from shipyard.monitoring import drift, render_html

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = drift(reference, current)
        page = render_html(report, title="shipyard drift report")
        out.write_text(page, encoding="utf-8")
        times.append(time.perf_counter() - start)
    scores = {name: c.score for name, c in report.columns.items()}
    return {
        "seconds": statistics.median(times),
        "html_bytes": out.stat().st_size,
        "drifted": report.drifted,
        "scores": scores,
    }


PROFILE_CHILD = """
import json, resource, sys, time
from shipyard.monitoring import Profile, drift, profile, render_html
mode, ref_path, cur_path, stored = sys.argv[1:5]
start = time.perf_counter()
if mode == "store":
    with open(stored, "w") as f:
        f.write(profile(ref_path).to_json())
    drifted = []
elif mode == "stream":
    with open(stored) as f:
        reference = Profile.from_json(f.read())
    report = drift(reference, cur_path)
    render_html(report, title="profile-based")
    drifted = report.drifted
else:
    import pandas as pd
    reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    report = drift(reference, current)
    render_html(report, title="both tables")
    drifted = report.drifted
seconds = time.perf_counter() - start
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": seconds, "peak_kb": peak, "drifted": drifted}))
"""


def profile_child(mode: str, ref_path: Path, cur_path: Path, stored: Path) -> dict[str, Any]:
    """One fresh process: ``store`` the reference profile, ``stream`` the current against it, or ``both`` tables."""
    done = subprocess.run(
        [sys.executable, "-c", PROFILE_CHILD, mode, str(ref_path), str(cur_path), str(stored)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the shipyard {mode} process failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# Evidently ---------------------------------------------------------------------------------
def run_evidently(ref_path: Path, cur_path: Path, out: Path, repeat: int) -> dict[str, Any]:
    if not EVIDENTLY_PYTHON.exists():
        raise SystemExit("Evidently's virtualenv is missing: run bash benchmarks/setup_evidently.sh")
    env = {**os.environ, "DO_NOT_TRACK": "true", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(
        [str(EVIDENTLY_PYTHON), __file__, "--peer", str(ref_path), str(cur_path), str(out), str(repeat)],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the Evidently process failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def peer_main(ref_path: str, cur_path: str, out: str, repeat: int) -> None:
    """Inside Evidently's virtualenv: the DataDriftPreset report, timed, and the columns it flags."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        snapshot.save_html(out)
        times.append(time.perf_counter() - start)
    drifted, scores = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            column, value = config["column"], float(metric["value"])
            scores[column] = value
            threshold = float(config.get("threshold") or 0.1)
            # Evidently's p-value tests flag below their threshold, its distances at or above it.
            if (value < threshold) if "p_value" in str(config.get("method")) else (value >= threshold):
                drifted.append(column)
    print(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "html_bytes": os.path.getsize(out),
                "drifted": drifted,
                "scores": scores,
            }
        )
    )


# the run --------------------------------------------------------------------------------
def check(side: str, result: dict[str, Any], expected: dict[str, float], tolerance: float | None) -> list[str]:
    problems = []
    if sorted(result["drifted"]) != sorted(SHIFTED):
        problems.append(f"{side} flagged {sorted(result['drifted'])}, expected {sorted(SHIFTED)}")
    if tolerance is not None:
        for name, want in expected.items():
            got = result["scores"].get(name)
            if got is None or abs(got - want) > tolerance:
                problems.append(f"{side} scored {name} {got}, the reference {want:.4f} (tolerance {tolerance})")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 100,000 rows per side")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the median is shown")
    args = parser.parse_args()
    rows = int(ROWS * args.scale)
    reference, current = generate(rows, 1, shifted=False), generate(rows, 2, shifted=True)
    expected = expected_scores(reference, current)
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-monitoring-") as tmp:
        folder = Path(tmp)
        ref_path, cur_path = folder / "reference.parquet", folder / "current.parquet"
        reference.to_parquet(ref_path, index=False)
        current.to_parquet(cur_path, index=False, row_group_size=16_384)
        ours = run_shipyard(reference, current, folder / "shipyard.html", args.repeat)
        theirs = run_evidently(ref_path, cur_path, folder / "evidently.html", args.repeat)
        stored = folder / "reference-profile.json"
        store = profile_child("store", ref_path, cur_path, stored)
        stream = profile_child("stream", ref_path, cur_path, stored)
        both = profile_child("both", ref_path, cur_path, stored)
        profile_bytes = stored.stat().st_size
    problems = check("shipyard", ours, expected, TOLERANCE) + check("Evidently", theirs, expected, None)
    problems += check("shipyard (profile, streamed)", {**stream, "scores": {}}, expected, None)
    problems += check("shipyard (both tables, fresh process)", {**both, "scores": {}}, expected, None)
    if stream["peak_kb"] >= both["peak_kb"]:
        problems.append(f"streaming peaked at {stream['peak_kb']} KB, not below both tables' {both['peak_kb']} KB")
    if problems:
        print("CHECK FAILED; no figures are printed:\n  " + "\n  ".join(problems))
        raise SystemExit(1)
    print(f"reference {rows:,} x 20 vs current {rows:,} x 20, {len(SHIFTED)} shifted columns: {', '.join(SHIFTED)}")
    print("both sides flag exactly the shifted columns; shipyard's scores within", TOLERANCE, "of scipy's")
    print(f"{'':32}{'shipyard':>12}{'Evidently':>12}{'ratio':>10}")
    print(
        f"{'drift report + HTML (s)':32}{ours['seconds']:>12.3f}{theirs['seconds']:>12.3f}"
        f"{theirs['seconds'] / ours['seconds']:>9.1f}x"
    )
    print(
        f"{'HTML size (KB)':32}{ours['html_bytes'] / 1024:>12.1f}{theirs['html_bytes'] / 1024:>12.1f}"
        f"{theirs['html_bytes'] / ours['html_bytes']:>9.1f}x"
    )
    print(
        f"profile-based: reference profile stored once in {store['seconds']:.3f} s "
        f"({profile_bytes / 1024:.0f} KB of JSON);"
    )
    print(
        f"  current streamed from Parquet against it: {stream['seconds']:.3f} s, "
        f"peak RSS {stream['peak_kb'] / 1024:.0f} MB"
    )
    print(
        f"  both tables in memory (fresh process):    {both['seconds']:.3f} s, peak RSS {both['peak_kb'] / 1024:.0f} MB"
    )
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        peer_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
